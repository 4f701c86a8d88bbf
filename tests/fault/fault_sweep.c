/*
 * fault_sweep.c -- makes every allocation inside libsepconv fail in turn on
 * the main paths (parse, generate, compile with tcc and cc, verify, tune,
 * the tuning log), and checks that each failure comes back as an error
 * status with a message; LeakSanitizer (make check-faults builds with ASan)
 * then checks that nothing leaked on any of those paths.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sepconv.h"
#include "core/fault.h"
#include "generate/generate.h"
#include "log/log.h"

/* One path through the library; returns its status and fills `error`. */
typedef sepconv_status (*scenario)(sepconv_error *error);

static sepconv_status parse_and_cost(sepconv_error *error)
{
    sepconv_model model;
    sepconv_status status = sepconv_model_parse("op=sep df=8 m=4 n=6 dk=3\nop=dw df=5 m=3 dk=3\n",
                                                "sweep", &model, error);
    if (status == SEPCONV_OK)
        sepconv_model_free(&model);
    return status;
}

static sepconv_status generate(sepconv_error *error)
{
    sepconv_layer layer;
    sepconv_schedule schedule;
    sepconv_source source;
    sepconv_status status = sepconv_layer_parse("op=sep df=6 m=4 n=5 dk=3 bias=1", &layer, error);
    if (status == SEPCONV_OK)
        status = sepconv_schedule_default(&layer, SEPCONV_TARGET_PORTABLE, &schedule, error);
    if (status == SEPCONV_OK)
        status = sepconv_generate(&layer, &schedule, NULL, &source, error);
    if (status == SEPCONV_OK)
        sepconv_source_free(&source);
    return status;
}

/* Creates (generate, compile, verify), sets weights and runs a kernel. */
static sepconv_status kernel_with(sepconv_backend backend, sepconv_error *error)
{
    sepconv_layer layer;
    sepconv_status status = sepconv_layer_parse("op=sep df=5 m=3 n=4 dk=3 bias=1 act=relu",
                                                &layer, error);
    sepconv_kernel_options options = sepconv_kernel_defaults();
    options.backend = backend;
    options.threads = 2;
    options.cc.flags = "-O1";
    options.cc.cache_dir = "/tmp/sepconv-fault-cache";
    sepconv_kernel *kernel = NULL;
    sepconv_buffers buffers;
    memset(&buffers, 0, sizeof buffers);
    if (status == SEPCONV_OK)
        status = sepconv_kernel_create(&layer, &options, &kernel, error);
    if (status == SEPCONV_OK)
        status = sepconv_buffers_alloc(&layer, &buffers, error);
    if (status == SEPCONV_OK) {
        sepconv_buffers_fill_random(&layer, &buffers, 1);
        sepconv_tensors t = sepconv_buffers_tensors(&buffers);
        status = sepconv_kernel_set_weights(kernel, &t, error);
    }
    if (status == SEPCONV_OK)
        status = sepconv_kernel_run(kernel, buffers.input, buffers.output, error);
    sepconv_buffers_free(&buffers);
    sepconv_kernel_free(kernel);
    return status;
}

static sepconv_status kernel_tcc(sepconv_error *error)
{
    return kernel_with(SEPCONV_BACKEND_TCC, error);
}

static sepconv_status kernel_cc(sepconv_error *error)
{
    return kernel_with(SEPCONV_BACKEND_CC, error);
}

static sepconv_status tune_and_log(sepconv_error *error)
{
    sepconv_layer layer;
    sepconv_status status = sepconv_layer_parse("op=dw df=4 m=3 dk=3", &layer, error);
    sepconv_tune_options options = sepconv_tune_defaults();
    options.strategy = SEPCONV_STRATEGY_RANDOM;
    options.trials = 2;
    options.log_path = "/tmp/sepconv-fault-sweep.jsonl";
    sepconv_tune_result result;
    if (status == SEPCONV_OK)
        status = sepconv_tune_layer(&layer, &options, &result, error);
    if (status == SEPCONV_OK)
        sepconv_tune_result_free(&result);
    sepconv_tune_log log;
    if (status == SEPCONV_OK)
        status = sepconv_log_read(options.log_path, &log, error);
    if (status == SEPCONV_OK)
        sepconv_log_free(&log);
    return status;
}

int main(void)
{
    struct { const char *name; scenario run; } scenarios[] = {
        {"parse", parse_and_cost}, {"generate", generate}, {"tcc kernel", kernel_tcc},
        {"cc kernel", kernel_cc}, {"tune and log", tune_and_log}};
    long injected = 0;
    int failures = 0;
    for (size_t s = 0; s < sizeof scenarios / sizeof scenarios[0]; s++) {
        sepconv_error error;
        sepconv_fault_arm(0);
        if (scenarios[s].run(&error) != SEPCONV_OK) {
            fprintf(stderr, "%s: fails without faults: %s\n", scenarios[s].name, error.message);
            return 1;
        }
        long total = sepconv_fault_count(); /* allocations on this path */
        long step = total > 350 ? (total - 50) / 300 + 1 : 1;
        long tried = 0;
        for (long n = 1; n <= total; n += n < 50 ? 1 : step) {
            tried++;
            memset(&error, 0, sizeof error);
            sepconv_fault_arm(n);
            sepconv_status status = scenarios[s].run(&error);
            bool hit = sepconv_fault_count() >= n;
            sepconv_fault_arm(0);
            injected += hit;
            if (hit && status == SEPCONV_OK)
                continue; /* a failure the path may absorb (a cache, a retry) */
            if (status != SEPCONV_OK && error.message[0] == '\0') {
                fprintf(stderr, "%s: allocation %ld failed with status %d and no message\n",
                        scenarios[s].name, n, status);
                failures++;
            }
        }
        printf("%-14s %6ld allocations, %4ld of them made to fail in turn\n",
               scenarios[s].name, total, tried);
    }
    unlink("/tmp/sepconv-fault-sweep.jsonl");
    printf("fault sweep: %ld faults injected, %d without a message\n", injected, failures);
    return failures ? 1 : 0;
}
