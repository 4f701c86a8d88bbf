/*
 * schedule.c -- the knobs that shape a generated kernel: which op has which,
 * their ranges per target, defaults, parse and print.
 */
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "layer/schedule.h"

/* A knob's fixed facts; ranges that depend on the target are below. */
typedef struct knob_spec {
    const char *name;
    const char *help;
    unsigned ops; /* bit per sepconv_op */
} knob_spec;

#define OPS(conv, dw, pw, sep) ((conv) | (dw) << 1 | (pw) << 2 | (sep) << 3)

static const knob_spec knobs[SEPCONV_KNOB_COUNT] = {
    [SEPCONV_KNOB_CHANNEL_BLOCK] = {"channel_block",
        "channels computed together (dw; conv: output channels)", OPS(1, 1, 0, 1)},
    [SEPCONV_KNOB_TILE_W] = {"tile_w",
        "output pixels per step of the spatial kernel, sharing weight loads",
        OPS(1, 1, 0, 1)},
    [SEPCONV_KNOB_PIXEL_BLOCK] = {"pixel_block",
        "pixels of the pointwise register block", OPS(0, 0, 1, 1)},
    [SEPCONV_KNOB_OC_BLOCK] = {"oc_block",
        "output channels of the pointwise register block", OPS(0, 0, 1, 1)},
    [SEPCONV_KNOB_PACK] = {"pack",
        "1: pointwise weights packed once into [N/oc_block][M][oc_block]",
        OPS(0, 0, 1, 1)},
    [SEPCONV_KNOB_UNROLL] = {"unroll",
        "spatial unrolling: none (loops, borders split), row (columns "
        "unrolled), full (every pixel; small layers); in a sep, of its depthwise stage",
        OPS(1, 1, 1, 1)},
    [SEPCONV_KNOB_FUSE] = {"fuse",
        "0: depthwise into a full intermediate, then pointwise; 1: row tiles "
        "that stay in cache; 2: pixel tiles, the depthwise output of a few "
        "pointwise tiles' pixels at a time, in L1 (micro-kernel code; "
        "intrinsics code: as fuse=1,tile_h=1)", OPS(0, 0, 0, 1)},
    [SEPCONV_KNOB_TILE_H] = {"tile_h", "rows per fused tile (fuse=1); pointwise "
        "micro-kernel tiles of pixels per fused tile (fuse=2)", OPS(0, 0, 0, 1)},
    /* the stages' best unrolling differs (sep 56x56x128: depthwise none,
     * pointwise row; one knob for both could not compose the two) */
    [SEPCONV_KNOB_PW_UNROLL] = {"pw_unroll",
        "unroll of the pointwise stage (left out of a schedule: as unroll)",
        OPS(0, 0, 0, 1)},
};

static const char *const target_names[] = {"portable", "avx2", "avx512", "neon", "auto"};
static const char *const unroll_names[] = {"none", "row", "full"};

/* The spec name of a target. */
const char *sepconv_target_name(sepconv_target target)
{
    return (unsigned)target < SEPCONV_TARGET_COUNT ? target_names[target] : "?";
}

/* The index of `text` among `count` names, else -1. */
static int name_index(const char *text, const char *const *names, int count)
{
    for (int i = 0; text && i < count; i++)
        if (strcmp(text, names[i]) == 0)
            return i;
    return -1;
}

/* Parses a target name. */
sepconv_status sepconv_target_parse(const char *text, sepconv_target *target,
                                    sepconv_error *error)
{
    int i = name_index(text, target_names, SEPCONV_TARGET_COUNT);
    if (i < 0 && text && strcmp(text, "native") == 0)
        i = SEPCONV_TARGET_AUTO; /* the old name of the best this CPU has */
    if (i < 0)
        return sepconv_fail(error, SEPCONV_INVALID,
                            "target '%s' is not valid (expected portable | avx2 | "
                            "avx512 | neon | auto)", text ? text : "");
    *target = (sepconv_target)i;
    return SEPCONV_OK;
}

static const char *const backend_names[] = {"tcc", "cc"};

/* The spec name of a backend. */
const char *sepconv_backend_name(sepconv_backend backend)
{
    return (unsigned)backend < SEPCONV_BACKEND_COUNT ? backend_names[backend] : "?";
}

/* Parses a backend name. */
sepconv_status sepconv_backend_parse(const char *text, sepconv_backend *backend,
                                     sepconv_error *error)
{
    int i = name_index(text, backend_names, SEPCONV_BACKEND_COUNT);
    if (i < 0)
        return sepconv_fail(error, SEPCONV_INVALID,
                            "backend '%s' is not valid (expected tcc | cc)", text ? text : "");
    *backend = (sepconv_backend)i;
    return SEPCONV_OK;
}

/* The unroll value of a schedule's pointwise stage. */
int64_t sepconv_schedule_pw_unroll(const sepconv_schedule *schedule)
{
    return schedule->value[schedule->op == SEPCONV_OP_SEP ? SEPCONV_KNOB_PW_UNROLL
                                                          : SEPCONV_KNOB_UNROLL];
}

int64_t sepconv_microkernel_pixels(sepconv_target target)
{
    switch (target) {
    case SEPCONV_TARGET_AVX512: return 7; /* sepconv_uk_pointwise_7x64__avx512 */
    case SEPCONV_TARGET_AVX2:               /* sepconv_uk_pointwise_6x16__avx2 */
    case SEPCONV_TARGET_NEON: return 6;     /* sepconv_uk_pointwise_6x16__neon */
    default: return 1;                      /* the scalar kernel: a pixel at a time */
    }
}

/* Whether an op has a knob. */
int sepconv_schedule_has_knob(sepconv_op op, sepconv_knob knob)
{
    return (unsigned)knob < SEPCONV_KNOB_COUNT && (unsigned)op < SEPCONV_OP_COUNT &&
           (knobs[knob].ops >> op & 1);
}

/* Fills a range from a list of values ending in -1. */
static void set_range(sepconv_knob_info *info, const int64_t *values,
                      int64_t default_value)
{
    info->count = 0;
    /* the bound first: a full list has no -1 within the array's reach */
    for (int i = 0; i < SEPCONV_KNOB_VALUES_MAX && values[i] >= 0; i++) {
        info->values[i] = values[i];
        info->value_names[i] = NULL;
        info->count++;
    }
    info->default_value = default_value;
}

/* Describes a knob: range and default for an op and target. */
sepconv_status sepconv_knob_describe(sepconv_op op, sepconv_target target,
                                     sepconv_knob knob, sepconv_knob_info *info,
                                     sepconv_error *error)
{
    if (!sepconv_schedule_has_knob(op, knob) || (unsigned)target >= SEPCONV_TARGET_ISA_COUNT ||
        !info)
        return sepconv_fail(error, SEPCONV_INVALID, "op=%s has no knob %d for target %s",
                            sepconv_op_name(op), (int)knob, sepconv_target_name(target));
    memset(info, 0, sizeof *info);
    info->name = knobs[knob].name;
    info->help = knobs[knob].help;
    /* Ranges are an instruction set's, for both backends: blocks are whole
     * vectors (4 floats neon, 8 avx2, 16 avx512) because cc's intrinsics
     * need them, and the tcc backend's micro-kernels pack the pointwise
     * weights in oc_block columns, which must be whole vectors of the ISA
     * too.  (Micro-kernel code ignores channel_block, tile_w and
     * pixel_block: the ISA's micro-kernel picks its own register tile.) */
    static const int64_t channel_portable[] = {4, 8, 16, 32, 64, -1};
    static const int64_t channel_avx2[] = {8, 16, 32, 64, -1};
    static const int64_t channel_avx512[] = {16, 32, 64, -1};
    static const int64_t tile_w[] = {1, 2, 4, 8, -1};
    static const int64_t pixel_block[] = {1, 2, 4, 6, 7, 8, -1};
    static const int64_t oc_portable[] = {8, 16, 32, 64, -1};
    static const int64_t oc_neon[] = {8, 12, 16, 24, 32, -1};
    static const int64_t oc_avx2[] = {8, 16, 24, 32, -1};
    static const int64_t oc_avx512[] = {16, 32, 48, 64, -1};
    static const int64_t boolean[] = {0, 1, -1};
    static const int64_t fuse[] = {0, 1, 2, -1};
    static const int64_t unroll[] = {0, 1, 2, -1};
    static const int64_t tile_h[] = {1, 2, 4, 8, -1};
    bool avx512 = target == SEPCONV_TARGET_AVX512;
    switch (knob) {
    case SEPCONV_KNOB_CHANNEL_BLOCK:
        set_range(info, target == SEPCONV_TARGET_AVX2 ? channel_avx2
                        : avx512                      ? channel_avx512
                                                      : channel_portable,
                  avx512 ? 32 : 16);
        break;
    /* SIMD defaults fill the register file: AVX-512's 32 registers hold 7
     * pixels x 3 vectors of accumulators (116 GFLOP/s measured on Zen 4's
     * 117 peak), AVX2's 16 hold 4 x 3, NEON's 32 q registers 6 x 4 */
    case SEPCONV_KNOB_TILE_W:
        set_range(info, tile_w, avx512 ? 4 : 2);
        break;
    case SEPCONV_KNOB_PIXEL_BLOCK:
        set_range(info, pixel_block, avx512 ? 7 : target == SEPCONV_TARGET_NEON ? 6 : 4);
        break;
    case SEPCONV_KNOB_OC_BLOCK:
        set_range(info, target == SEPCONV_TARGET_PORTABLE ? oc_portable
                        : target == SEPCONV_TARGET_NEON   ? oc_neon
                        : target == SEPCONV_TARGET_AVX2   ? oc_avx2
                                                          : oc_avx512,
                  target == SEPCONV_TARGET_PORTABLE ? 32
                  : target == SEPCONV_TARGET_NEON   ? 16
                  : target == SEPCONV_TARGET_AVX2   ? 24 : 48);
        break;
    case SEPCONV_KNOB_PACK: set_range(info, boolean, 1); break;
    case SEPCONV_KNOB_UNROLL:
    case SEPCONV_KNOB_PW_UNROLL:
        set_range(info, unroll, 0);
        for (int i = 0; i < 3; i++)
            info->value_names[i] = unroll_names[i];
        break;
    case SEPCONV_KNOB_FUSE: set_range(info, fuse, 1); break;
    case SEPCONV_KNOB_TILE_H: set_range(info, tile_h, 2); break;
    case SEPCONV_KNOB_COUNT: break;
    }
    return SEPCONV_OK;
}

/* The default schedule of a layer for a target. */
sepconv_status sepconv_schedule_default(const sepconv_layer *layer,
                                        sepconv_target target,
                                        sepconv_schedule *schedule,
                                        sepconv_error *error)
{
    if (!layer || !schedule)
        return sepconv_fail(error, SEPCONV_INVALID, "no layer or no schedule given");
    if (target == SEPCONV_TARGET_AUTO)
        return sepconv_fail(error, SEPCONV_INVALID, "a schedule is for an instruction "
                            "set: resolve target auto first (sepconv_target_resolve)");
    if ((unsigned)target >= SEPCONV_TARGET_ISA_COUNT)
        return sepconv_fail(error, SEPCONV_INVALID, "target %d is not valid",
                            (int)target);
    memset(schedule, 0, sizeof *schedule);
    schedule->op = layer->op;
    schedule->target = target;
    for (int k = 0; k < SEPCONV_KNOB_COUNT; k++) {
        sepconv_knob_info info;
        if (sepconv_knob_describe(layer->op, target, (sepconv_knob)k, &info, NULL) !=
            SEPCONV_OK)
            continue;
        schedule->value[k] = info.default_value;
        /* int8 code blocks channels in plain C (convolution_int8.c.in):
         * depthwise 16, conv 64, pointwise the widest block up to 64 (the
         * best measured on Zen 1 with gcc -O3) */
        if (layer->dtype == SEPCONV_DTYPE_INT8 && k == SEPCONV_KNOB_CHANNEL_BLOCK)
            schedule->value[k] = layer->op == SEPCONV_OP_DW ? 16 : 64;
        if (layer->dtype == SEPCONV_DTYPE_INT8 && k == SEPCONV_KNOB_OC_BLOCK)
            for (int i = 0; i < info.count; i++)
                if (info.values[i] <= 64 && info.values[i] > schedule->value[k])
                    schedule->value[k] = info.values[i];
    }
    return SEPCONV_OK;
}

/* Appends the allowed values of a knob to `out` ("1 | 2 | 4"). */
static void describe_values(const sepconv_knob_info *info, char *out, size_t capacity)
{
    size_t used = 0;
    out[0] = '\0';
    for (int i = 0; i < info->count && used < capacity; i++) {
        int wrote = info->value_names[i]
                        ? snprintf(out + used, capacity - used, "%s%s",
                                   i ? " | " : "", info->value_names[i])
                        : snprintf(out + used, capacity - used, "%s%lld",
                                   i ? " | " : "", (long long)info->values[i]);
        if (wrote < 0)
            break;
        used += (size_t)wrote;
    }
}

/* Sets one knob from "name=value" text. */
static sepconv_status set_knob(sepconv_schedule *schedule, const char *token,
                               unsigned *seen, sepconv_error *error)
{
    const char *equals = strchr(token, '=');
    size_t name_length = equals ? (size_t)(equals - token) : strlen(token);
    int knob = -1;
    for (int k = 0; k < SEPCONV_KNOB_COUNT; k++)
        if (strlen(knobs[k].name) == name_length &&
            strncmp(knobs[k].name, token, name_length) == 0)
            knob = k;
    if (!equals)
        return sepconv_fail(error, SEPCONV_INVALID,
                            "schedule token '%s' is not knob=value", token);
    if (knob < 0 || !sepconv_schedule_has_knob(schedule->op, (sepconv_knob)knob)) {
        char names[256] = "";
        for (int k = 0; k < SEPCONV_KNOB_COUNT; k++)
            if (sepconv_schedule_has_knob(schedule->op, (sepconv_knob)k)) {
                strcat(names, names[0] ? ", " : "");
                strcat(names, knobs[k].name);
            }
        return sepconv_fail(error, SEPCONV_INVALID,
                            "op=%s has no schedule knob '%.*s' (its knobs: %s)",
                            sepconv_op_name(schedule->op), (int)name_length,
                            token, names);
    }
    if (*seen & (1u << knob))
        return sepconv_fail(error, SEPCONV_INVALID,
                            "schedule knob '%s' is given twice", knobs[knob].name);
    *seen |= 1u << knob;
    sepconv_knob_info info;
    sepconv_knob_describe(schedule->op, schedule->target, (sepconv_knob)knob,
                          &info, NULL);
    const char *value = equals + 1;
    for (int i = 0; i < info.count; i++) {
        char number[32];
        snprintf(number, sizeof number, "%lld", (long long)info.values[i]);
        if (strcmp(value, number) == 0 ||
            (info.value_names[i] && strcmp(value, info.value_names[i]) == 0)) {
            schedule->value[knob] = info.values[i];
            return SEPCONV_OK;
        }
    }
    char allowed[256];
    describe_values(&info, allowed, sizeof allowed);
    return sepconv_fail(error, SEPCONV_INVALID,
                        "%s=%s is not valid for target %s (expected %s)",
                        knobs[knob].name, value,
                        sepconv_target_name(schedule->target), allowed);
}

/* Applies "knob=value,..." over the defaults. */
sepconv_status sepconv_schedule_parse(const char *text, const sepconv_layer *layer,
                                      sepconv_target target,
                                      sepconv_schedule *schedule,
                                      sepconv_error *error)
{
    sepconv_schedule parsed;
    sepconv_status status = sepconv_schedule_default(layer, target, &parsed, error);
    if (status != SEPCONV_OK)
        return status;
    unsigned seen = 0;
    const char *p = text ? text : "";
    char token[128];
    for (;;) {
        p += strspn(p, " ,");
        if (*p == '\0')
            break;
        size_t length = strcspn(p, " ,");
        if (length >= sizeof token)
            return sepconv_fail(error, SEPCONV_INVALID,
                                "schedule token '%.40s...' is too long", p);
        memcpy(token, p, length);
        token[length] = '\0';
        status = set_knob(&parsed, token, &seen, error);
        if (status != SEPCONV_OK)
            return status;
        p += length;
    }
    /* (a sep schedule from before pw_unroll: unroll was both stages') */
    if (parsed.op == SEPCONV_OP_SEP && !(seen & 1u << SEPCONV_KNOB_PW_UNROLL))
        parsed.value[SEPCONV_KNOB_PW_UNROLL] = parsed.value[SEPCONV_KNOB_UNROLL];
    *schedule = parsed;
    return SEPCONV_OK;
}

/* Writes "knob=value,..." for every knob of the op, in knob order. */
sepconv_status sepconv_schedule_format(const sepconv_schedule *schedule,
                                       char *out, size_t capacity,
                                       sepconv_error *error)
{
    if (!schedule || !out || capacity == 0)
        return sepconv_fail(error, SEPCONV_INVALID, "no schedule or no buffer given");
    size_t used = 0;
    out[0] = '\0';
    for (int k = 0; k < SEPCONV_KNOB_COUNT; k++) {
        if (!sepconv_schedule_has_knob(schedule->op, (sepconv_knob)k))
            continue;
        int64_t value = schedule->value[k];
        bool named = k == SEPCONV_KNOB_UNROLL || k == SEPCONV_KNOB_PW_UNROLL;
        int wrote = named && value >= 0 && value < 3
                        ? snprintf(out + used, capacity - used, "%s%s=%s",
                                   used ? "," : "", knobs[k].name,
                                   unroll_names[value])
                        : snprintf(out + used, capacity - used, "%s%s=%lld",
                                   used ? "," : "", knobs[k].name,
                                   (long long)value);
        if (wrote < 0 || (size_t)wrote >= capacity - used)
            return sepconv_fail(error, SEPCONV_INVALID,
                                "the schedule does not fit in %zu bytes", capacity);
        used += (size_t)wrote;
    }
    return SEPCONV_OK;
}
