/*
 * cpu_features.c -- the x86 features code may need and the CPU has: read
 * from a compiler's predefined macros and from libcpuinfo, so that an object
 * built for another CPU is refused instead of dying with SIGILL.
 * $SEPCONV_CPU_HIDE simulates a CPU without some of them (for tests).
 * Also the targets (instruction sets) as the CPU runs them:
 * sepconv_target_resolve, auto's choice and the refusal of an ISA it lacks.
 */
#include <cpuinfo.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"

/* The x86 features a compiler's predefined macros can require, and how
 * libcpuinfo says this CPU has them.  Bits of a uint64_t mask. */
static const struct feature {
    const char *macro;
    const char *name;
    bool (*present)(void);
    bool avx512;
} features[] = {
    {"__SSE3__", "sse3", cpuinfo_has_x86_sse3, false},
    {"__SSSE3__", "ssse3", cpuinfo_has_x86_ssse3, false},
    {"__SSE4_1__", "sse4.1", cpuinfo_has_x86_sse4_1, false},
    {"__SSE4_2__", "sse4.2", cpuinfo_has_x86_sse4_2, false},
    {"__SSE4A__", "sse4a", cpuinfo_has_x86_sse4a, false},
    {"__POPCNT__", "popcnt", cpuinfo_has_x86_popcnt, false},
    {"__AVX__", "avx", cpuinfo_has_x86_avx, false},
    {"__AVX2__", "avx2", cpuinfo_has_x86_avx2, false},
    {"__FMA__", "fma", cpuinfo_has_x86_fma3, false},
    {"__FMA4__", "fma4", cpuinfo_has_x86_fma4, false},
    {"__F16C__", "f16c", cpuinfo_has_x86_f16c, false},
    {"__BMI__", "bmi", cpuinfo_has_x86_bmi, false},
    {"__BMI2__", "bmi2", cpuinfo_has_x86_bmi2, false},
    {"__LZCNT__", "lzcnt", cpuinfo_has_x86_lzcnt, false},
    {"__MOVBE__", "movbe", cpuinfo_has_x86_movbe, false},
    {"__ADX__", "adx", cpuinfo_has_x86_adx, false},
    {"__AES__", "aes", cpuinfo_has_x86_aes, false},
    {"__PCLMUL__", "pclmul", cpuinfo_has_x86_pclmulqdq, false},
    {"__SHA__", "sha", cpuinfo_has_x86_sha, false},
    {"__GFNI__", "gfni", cpuinfo_has_x86_gfni, false},
    {"__VAES__", "vaes", cpuinfo_has_x86_vaes, false},
    {"__VPCLMULQDQ__", "vpclmulqdq", cpuinfo_has_x86_vpclmulqdq, false},
    {"__AVX512F__", "avx512f", cpuinfo_has_x86_avx512f, true},
    {"__AVX512BW__", "avx512bw", cpuinfo_has_x86_avx512bw, true},
    {"__AVX512CD__", "avx512cd", cpuinfo_has_x86_avx512cd, true},
    {"__AVX512DQ__", "avx512dq", cpuinfo_has_x86_avx512dq, true},
    {"__AVX512VL__", "avx512vl", cpuinfo_has_x86_avx512vl, true},
    {"__AVX512IFMA__", "avx512ifma", cpuinfo_has_x86_avx512ifma, true},
    {"__AVX512VBMI__", "avx512vbmi", cpuinfo_has_x86_avx512vbmi, true},
    {"__AVX512VBMI2__", "avx512vbmi2", cpuinfo_has_x86_avx512vbmi2, true},
    {"__AVX512VNNI__", "avx512vnni", cpuinfo_has_x86_avx512vnni, true},
    {"__AVX512BITALG__", "avx512bitalg", cpuinfo_has_x86_avx512bitalg, true},
    {"__AVX512VPOPCNTDQ__", "avx512vpopcntdq", cpuinfo_has_x86_avx512vpopcntdq, true},
    {"__AVX512BF16__", "avx512bf16", cpuinfo_has_x86_avx512bf16, true},
};
#define FEATURE_COUNT (sizeof features / sizeof features[0])
_Static_assert(FEATURE_COUNT <= 64, "features are bits of a uint64_t");

static pthread_once_t cpu_once = PTHREAD_ONCE_INIT;
static bool cpu_known;

/* Initializes libcpuinfo once per process. */
static void initialize_cpu(void)
{
    cpu_known = cpuinfo_initialize();
}

/* Whether $SEPCONV_CPU_HIDE (words such as "avx512f sha", or "avx512" for
 * all of AVX-512) hides a feature: a CPU without it, simulated. */
static bool hidden(const struct feature *f, const char *hide)
{
    for (const char *at = hide; at && *at;) {
        at += strspn(at, " \t\n\r\v\f");
        size_t length = strcspn(at, " \t\n\r\v\f");
        if ((length == strlen(f->name) && strncmp(at, f->name, length) == 0) ||
            (f->avx512 && length == 6 && strncmp(at, "avx512", 6) == 0))
            return true;
        at += length;
    }
    return false;
}

/* The features this CPU has, less those SEPCONV_CPU_HIDE hides.  All bits
 * when libcpuinfo cannot tell, so nothing is refused on a guess. */
uint64_t sepconv_cpu_features(void)
{
    pthread_once(&cpu_once, initialize_cpu);
    if (!cpu_known)
        return UINT64_MAX;
    const char *hide = getenv("SEPCONV_CPU_HIDE");
    uint64_t mask = 0;
    for (size_t i = 0; i < FEATURE_COUNT; i++)
        if (features[i].present() && !hidden(&features[i], hide))
            mask |= (uint64_t)1 << i;
    return mask;
}

/* The features that a compiler's predefined macros (its -E -dM output)
 * say its code may use. */
uint64_t sepconv_features_of_macros(const char *macros)
{
    uint64_t mask = 0;
    for (size_t i = 0; i < FEATURE_COUNT; i++) {
        char line[64];
        snprintf(line, sizeof line, "#define %s ", features[i].macro);
        if (strstr(macros, line))
            mask |= (uint64_t)1 << i;
    }
    return mask;
}

/* Refuses code that needs features the CPU lacks, naming the first. */
sepconv_status sepconv_check_features(uint64_t needed, const char *what,
                                      sepconv_error *error)
{
    uint64_t missing = needed & ~sepconv_cpu_features();
    for (size_t i = 0; i < FEATURE_COUNT; i++)
        if (missing & ((uint64_t)1 << i))
            return sepconv_fail(error, SEPCONV_UNSUPPORTED,
                                "cc: %s needs %s, which this CPU lacks%s; compile "
                                "for this CPU (-march=native) or an older -march",
                                what, features[i].name,
                                hidden(&features[i], getenv("SEPCONV_CPU_HIDE"))
                                    ? " (SEPCONV_CPU_HIDE hides it)" : "");
    return SEPCONV_OK;
}

#if defined(__x86_64__) || defined(__i386__)
/* The index of a feature in the table, by name. */
static int feature_index(const char *name)
{
    for (size_t i = 0; i < FEATURE_COUNT; i++)
        if (strcmp(features[i].name, name) == 0)
            return (int)i;
    return -1;
}
#endif

/* Whether $SEPCONV_CPU_HIDE names `name` (used for features outside the
 * x86 table, such as neon). */
bool sepconv_hidden_name(const char *name)
{
    struct feature f = {"", name, NULL, strncmp(name, "avx512", 6) == 0};
    return hidden(&f, getenv("SEPCONV_CPU_HIDE"));
}

/* Appends the CPU's name and features (those the table knows) to `text`. */
static void describe_cpu(char *text, size_t capacity)
{
    size_t used = 0;
    pthread_once(&cpu_once, initialize_cpu);
    const struct cpuinfo_package *package = cpu_known ? cpuinfo_get_package(0) : NULL;
    int wrote = snprintf(text, capacity, "%s has",
                         package && package->name[0] ? package->name : "this CPU");
    used = wrote < 0 ? 0 : (size_t)wrote < capacity ? (size_t)wrote : capacity - 1;
#if defined(__x86_64__) || defined(__i386__)
    uint64_t have = sepconv_cpu_features();
    bool any = false;
    /* the vector features (the rest do not decide a target) */
    for (size_t i = 0; i < FEATURE_COUNT && used + 1 < capacity; i++)
        if ((have & ((uint64_t)1 << i)) &&
            (strncmp(features[i].name, "avx", 3) == 0 || strncmp(features[i].name, "fma", 3) == 0 ||
             strncmp(features[i].name, "sse", 3) == 0)) {
            wrote = snprintf(text + used, capacity - used, " %s", features[i].name);
            used += wrote < 0 ? 0 : (size_t)wrote < capacity - used ? (size_t)wrote
                                                                    : capacity - used - 1;
            any = true;
        }
    if (!any && used + 1 < capacity)
        snprintf(text + used, capacity - used, " no vector features beyond SSE2");
#elif defined(__aarch64__)
    snprintf(text + used, capacity - used, " %s",
             sepconv_hidden_name("neon") ? "no neon" : "neon (aarch64)");
#else
    snprintf(text + used, capacity - used, " no SIMD instruction set sepconv knows");
#endif
}

/* A target's name as the backends spell it (the layer room's
 * sepconv_target_name is above them): "portable" .. "auto", else "?". */
const char *sepconv_isa_name(sepconv_target target)
{
    static const char *const names[] = {"portable", "avx2", "avx512", "neon", "auto"};
    _Static_assert(sizeof names / sizeof names[0] == SEPCONV_TARGET_COUNT,
                   "a name per target");
    return (unsigned)target < SEPCONV_TARGET_COUNT ? names[target] : "?";
}

/* The features an instruction set needs, as names ending in NULL. */
static const char *const *isa_needs(sepconv_target target)
{
    static const char *const avx2[] = {"avx2", "fma", NULL};
    static const char *const avx512[] = {"avx512f", NULL};
    static const char *const neon[] = {"neon", NULL};
    static const char *const none[] = {NULL};
    return target == SEPCONV_TARGET_AVX2     ? avx2
           : target == SEPCONV_TARGET_AVX512 ? avx512
           : target == SEPCONV_TARGET_NEON   ? neon : none;
}

/* The first feature an ISA needs that the CPU lacks, or NULL. */
static const char *isa_missing(sepconv_target target)
{
    const char *const *needs = isa_needs(target);
#if defined(__x86_64__) || defined(__i386__)
    if (target == SEPCONV_TARGET_NEON)
        return "neon";
    /* SEPCONV_NO_AVX512=1 (valgrind cannot run it) rules the AVX-512 target
     * out, as the micro-kernels' own dispatch does; cc objects are checked
     * against the CPU as it is */
    const char *no_avx512 = getenv("SEPCONV_NO_AVX512");
    if (target == SEPCONV_TARGET_AVX512 && no_avx512 && no_avx512[0] == '1')
        return "avx512f";
    uint64_t have = sepconv_cpu_features();
    for (int i = 0; needs[i]; i++) {
        int bit = feature_index(needs[i]);
        if (bit < 0 || !(have & ((uint64_t)1 << bit)))
            return needs[i];
    }
    return NULL;
#elif defined(__aarch64__)
    if (target == SEPCONV_TARGET_AVX2 || target == SEPCONV_TARGET_AVX512)
        return needs[0];
    return target == SEPCONV_TARGET_NEON && sepconv_hidden_name("neon") ? "neon" : NULL;
#else
    return needs[0];
#endif
}

/* AUTO: the best ISA the CPU has; an ISA: itself, or UNSUPPORTED naming
 * what it needs and what the CPU has. */
sepconv_status sepconv_target_resolve(sepconv_target requested, sepconv_target *resolved,
                                      sepconv_error *error)
{
    if ((unsigned)requested >= SEPCONV_TARGET_COUNT || !resolved)
        return sepconv_fail(error, SEPCONV_INVALID, "target %d is not valid (expected "
                            "portable | avx2 | avx512 | neon | auto)", (int)requested);
    if (requested == SEPCONV_TARGET_AUTO) {
        static const sepconv_target best[] = {SEPCONV_TARGET_AVX512, SEPCONV_TARGET_AVX2,
                                              SEPCONV_TARGET_NEON};
        *resolved = SEPCONV_TARGET_PORTABLE;
#if defined(__x86_64__) || defined(__i386__)
        /* a CPU libcpuinfo cannot read: auto does not guess (portable) */
        pthread_once(&cpu_once, initialize_cpu);
        if (!cpu_known)
            return SEPCONV_OK;
#endif
        for (size_t i = 0; i < sizeof best / sizeof best[0]; i++)
            if (!isa_missing(best[i])) {
                *resolved = best[i];
                break;
            }
        return SEPCONV_OK;
    }
    const char *missing = isa_missing(requested);
    if (!missing) {
        *resolved = requested;
        return SEPCONV_OK;
    }
    char cpu[600], needs[64] = "";
    describe_cpu(cpu, sizeof cpu);
    for (const char *const *n = isa_needs(requested); *n; n++)
        snprintf(needs + strlen(needs), sizeof needs - strlen(needs), "%s%s",
                 needs[0] ? " + " : "", *n);
    bool other_arch =
#if defined(__aarch64__)
        requested != SEPCONV_TARGET_NEON;
#else
        requested == SEPCONV_TARGET_NEON;
#endif
    bool hid = !other_arch && sepconv_hidden_name(missing);
    const char *no_avx512 = getenv("SEPCONV_NO_AVX512");
    bool ruled_out = !hid && requested == SEPCONV_TARGET_AVX512 && no_avx512 &&
                     no_avx512[0] == '1';
    return sepconv_fail(error, SEPCONV_UNSUPPORTED,
                        "target %s needs %s, which this CPU lacks%s (%s%s%s); use "
                        "target auto for the best it has, or portable",
                        sepconv_isa_name(requested), needs,
                        other_arch ? " (another architecture's instruction set)" : "", cpu,
                        hid ? "; SEPCONV_CPU_HIDE hides " : ruled_out
                            ? "; SEPCONV_NO_AVX512=1 rules out " : "",
                        hid || ruled_out ? missing : "");
}
