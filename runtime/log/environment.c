/*
 * environment.c -- what a measurement depends on besides the layer and the
 * schedule: the processor (libcpuinfo), the compiler, the target (resolved
 * to an instruction set), sepconv's
 * version, the thread count.
 */
#include <cpuinfo.h>
#include <pthread.h>
#include <string.h>

#include "core/core.h"
#include "backend/backend.h"

#ifndef SEPCONV_TCC_VERSION
#define SEPCONV_TCC_VERSION "unknown"
#endif

static pthread_once_t cpuinfo_once = PTHREAD_ONCE_INIT;
static bool cpuinfo_ready;

/* Initializes libcpuinfo once per process. */
static void initialize_cpuinfo(void)
{
    cpuinfo_ready = cpuinfo_initialize();
}

/* Fills the processor's name and SIMD features, less those SEPCONV_CPU_HIDE
 * hides (a record measured with AVX-512 hidden must not match one measured
 * with it). */
static void describe_cpu(sepconv_environment *e)
{
    pthread_once(&cpuinfo_once, initialize_cpuinfo);
    const struct cpuinfo_package *package = cpuinfo_ready ? cpuinfo_get_package(0) : NULL;
    snprintf(e->cpu, sizeof e->cpu, "%s", package && package->name[0] ? package->name
                                                                       : "unknown");
    const struct { const char *name; bool present; } features[] = {
        {"avx", cpuinfo_ready && cpuinfo_has_x86_avx()},
        {"avx2", cpuinfo_ready && cpuinfo_has_x86_avx2()},
        {"fma", cpuinfo_ready && cpuinfo_has_x86_fma3()},
        {"avx512f", cpuinfo_ready && cpuinfo_has_x86_avx512f()},
        {"avx512bw", cpuinfo_ready && cpuinfo_has_x86_avx512bw()},
        {"avx512vl", cpuinfo_ready && cpuinfo_has_x86_avx512vl()}};
    e->features[0] = '\0';
    for (size_t i = 0; i < sizeof features / sizeof features[0]; i++)
        if (features[i].present && !sepconv_hidden_name(features[i].name)) {
            if (e->features[0])
                strcat(e->features, " ");
            strcat(e->features, features[i].name);
        }
}

/* Describes this machine and the options' backend. */
sepconv_status sepconv_environment_get(const sepconv_kernel_options *options,
                                       sepconv_environment *environment,
                                       sepconv_error *error)
{
    if (!options || !environment)
        return sepconv_fail(error, SEPCONV_INVALID, "environment: missing arguments");
    sepconv_environment *e = environment;
    memset(e, 0, sizeof *e);
    snprintf(e->version, sizeof e->version, "%s", SEPCONV_VERSION);
    snprintf(e->backend, sizeof e->backend, "%s", sepconv_backend_name(options->backend));
    /* the instruction set code runs with: "auto" is resolved, so a record
     * made on an AVX2 machine never matches an AVX-512 one */
    sepconv_target target;
    sepconv_status status = sepconv_target_resolve(options->target, &target, error);
    if (status != SEPCONV_OK)
        return status;
    snprintf(e->target, sizeof e->target, "%s", sepconv_target_name(target));
    e->threads = options->threads;
    describe_cpu(e);
    if (options->backend == SEPCONV_BACKEND_TCC) {
        snprintf(e->compiler, sizeof e->compiler, "libtcc %s", SEPCONV_TCC_VERSION);
        return SEPCONV_OK;
    }
    snprintf(e->flags, sizeof e->flags, "%s",
             options->cc.flags ? options->cc.flags : "-O3 -march=native");
    return sepconv_cc_identity(&options->cc, e->compiler, sizeof e->compiler, error);
}
