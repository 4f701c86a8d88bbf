/*
 * cmd_gen.c -- `sepconv gen SPEC`: writes a layer's generated kernel (.c and
 * optionally .h) for ahead-of-time builds.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* Writes `length` bytes to `path` ("-" or NULL: stdout). */
static int write_text(const char *path, const char *text, size_t length)
{
    FILE *file = cli_open_output(path, "gen");
    if (!file)
        return CLI_FAILURE;
    if (cli_write(file, path, text, length, "gen") != CLI_OK) {
        if (file != stdout)
            fclose(file); /* the failure is reported */
        return CLI_FAILURE;
    }
    return cli_close_output(file, path, "gen");
}

/* Entry point of `sepconv gen`. */
static int gen_run(int argc, char **argv)
{
    cli_input input = {0};
    cli_kernel_options kernel = cli_kernel_defaults();
    const char *output = NULL, *header = NULL;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        const char *value = NULL;
        bool missing = false;
        int parsed = cli_kernel_option(argc, argv, &i, &kernel, "gen");
        if (parsed < 0)
            return CLI_USAGE;
        if (parsed > 0)
            continue;
        if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (cli_option(argc, argv, &i, "-o", &value, &missing) ||
                   cli_option(argc, argv, &i, "--output", &value, &missing)) {
            if (missing)
                return cli_usage("gen", "-o takes a file name");
            output = value;
        } else if (cli_option(argc, argv, &i, "--backend", &value, &missing)) {
            if (missing || sepconv_backend_parse(value, &kernel.backend, NULL) != SEPCONV_OK)
                return cli_usage("gen", "--backend takes tcc or cc");
            kernel.backend_given = true;
        } else if (cli_option(argc, argv, &i, "--header", &value, &missing)) {
            if (missing)
                return cli_usage("gen", "--header takes a file name");
            header = value;
        } else if (cli_is_option(argv[i])) {
            return cli_usage("gen", "unknown option '%s'", argv[i]);
        } else if (!strchr(argv[i], '=') || !cli_input_add(&input, argv[i])) {
            return cli_usage("gen", "'%s' is not a key=value token", argv[i]);
        }
    }
    if (!input.spec[0])
        return cli_usage("gen", "missing SPEC");
    if (json && (!output || strcmp(output, "-") == 0))
        return cli_usage("gen", "--json prints a summary: give -o FILE.c for the code");
    sepconv_error error;
    sepconv_layer layer;
    sepconv_schedule schedule;
    sepconv_source source;
    if (sepconv_layer_parse(input.spec, &layer, &error) != SEPCONV_OK)
        return cli_usage_error("gen", &error);
    /* gen compiles nothing: source for any CPU (auto means this one's best);
     * the backend says whose source it is, tcc's calling micro-kernels or
     * cc's intrinsics */
    if (cli_target_resolve(&kernel, true, "gen") != CLI_OK)
        return CLI_FAILURE;
    sepconv_backend builder = kernel.backend_given ? kernel.backend : SEPCONV_BACKEND_CC;
    kernel.generate.for_cc = kernel.backend_given && kernel.backend == SEPCONV_BACKEND_CC;
    kernel.generate.intrinsics = !kernel.backend_given; /* self-contained C */
    if (cli_kernel_check(&kernel, builder, &layer, "gen") != CLI_OK)
        return CLI_USAGE;
    if (cli_kernel_schedule(&kernel, &layer, &schedule, &error) != SEPCONV_OK ||
        sepconv_generate(&layer, &schedule, &kernel.generate, &source, &error) !=
            SEPCONV_OK)
        return cli_fail("gen", &error);
    int code = write_text(output, source.code, source.code_length);
    if (code == CLI_OK && header)
        code = write_text(header, source.header, source.header_length);
    if (code == CLI_OK && json) {
        printf("{\"symbol\":");
        cli_json_string(stdout, source.symbol);
        printf(",\"template\":");
        cli_json_string(stdout, source.template_name);
        printf(",\"code\":");
        cli_json_string(stdout, output);
        if (header) {
            printf(",\"header\":");
            cli_json_string(stdout, header);
        }
        printf(",\"code_bytes\":%zu,\"scratch_bytes\":%lld,\"packed_elements\":%lld,"
               "\"rows\":%lld}\n",
               source.code_length, (long long)source.scratch_bytes,
               (long long)source.packed_elements, (long long)source.rows);
    }
    sepconv_source_free(&source);
    return code;
}

const cli_command cli_gen_command = {
    "gen", "generate a layer's kernel as C source (.c and .h)", gen_run,
    "usage: sepconv gen SPEC [--schedule K=V,...] [--target T] [-o FILE.c]\n"
    "                   [--header FILE.h] [--name NAME] [--templates DIR]\n"
    "                   [--max-source SIZE] [--log FILE] [--backend B] [--json]\n\n"
    "Writes the shape-specialized kernel of a layer: every size a constant,\n"
    "taps unrolled, borders split from the interior.  The .c opens with the\n"
    "exact command that reproduces it byte for byte.\n\n"
    "  --schedule K=V,...  knobs over the defaults (see 'sepconv schedules SPEC');\n"
    "                      'best': the tuning log's fastest for this machine\n"
    "  --log FILE          the tuning log for 'best' (default\n"
    "                      ~/.cache/sepconv/tuning.jsonl)\n"
    "  --backend B         whose source it is, and whose records 'best' reads:\n"
    "                      without it, self-contained C for any compiler (the\n"
    "                      target's intrinsics) and tcc's records, as for jit,\n"
    "                      run and tune; cc: the intrinsics, cc's budget and\n"
    "                      records; tcc: plain C that calls libsepconv's\n"
    "                      micro-kernels of the target (link libsepconv)\n"
    "  --target T          auto (default: this CPU's best), portable (plain C,\n"
    "                      any CPU), avx2, avx512 or neon: any of them on any\n"
    "                      machine, for another one (native: auto)\n"
    "  -o FILE.c           the kernel (default, or '-': standard output)\n"
    "  --header FILE.h     also write its header\n"
    "  --name NAME         the kernel's symbol (default: derived from the shape)\n"
    "  --templates DIR     read templates from DIR (also $SEPCONV_TEMPLATE_DIR)\n"
    "  --max-source SIZE   the source-size budget in bytes, or with a suffix\n"
    "                      K, M, G (powers of 1024; default 4M)\n"
    "  --json              print a summary (symbol, sizes) as JSON; needs -o\n\n"
    "example: sepconv gen op=dw df=14 m=512 dk=3 --schedule channel_block=32 -o dw.c\n"};
