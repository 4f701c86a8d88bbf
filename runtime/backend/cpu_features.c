/*
 * cpu_features.c -- the x86 features code may need and the CPU has: read
 * from a compiler's predefined macros and from libcpuinfo, so that an object
 * built for another CPU is refused instead of dying with SIGILL.
 * $SEPCONV_CPU_HIDE simulates a CPU without some of them (for tests).
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
