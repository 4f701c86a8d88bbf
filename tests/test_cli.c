/*
 * test_cli.c -- the sepconv command as a user runs it: exit codes 0/1/2,
 * errors on stderr only, help, tables and JSON.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests.h"

/* What one run of the command printed and returned. */
typedef struct outcome {
    int code;
    char out[16384];
    char err[4096];
} outcome;

/* Reads up to capacity-1 bytes of a file into `text`. */
static void slurp(const char *path, char *text, size_t capacity)
{
    FILE *file = fopen(path, "rb");
    size_t got = file ? fread(text, 1, capacity - 1, file) : 0;
    text[got] = '\0';
    if (file)
        fclose(file);
}

/* Runs `sepconv ARGS` (ARGS already shell-quoted), capturing both streams. */
static outcome *run_cli(const char *args)
{
    static outcome result;
    const char *cli = getenv("SEPCONV_CLI");
    ck_assert_msg(cli != NULL, "SEPCONV_CLI is not set (run through make test)");
    char out_path[] = "/tmp/sepconv-cli-out-XXXXXX";
    char err_path[] = "/tmp/sepconv-cli-err-XXXXXX";
    close(mkstemp(out_path));
    close(mkstemp(err_path));
    char command[8192];
    const char *root = getenv("SEPCONV_ROOT");
    snprintf(command, sizeof command, "cd '%s' && '%s' %s >%s 2>%s",
             root ? root : ".", cli, args, out_path, err_path);
    int status = system(command);
    ck_assert_msg(WIFEXITED(status), "'%s' did not exit normally", command);
    result.code = WEXITSTATUS(status);
    slurp(out_path, result.out, sizeof result.out);
    slurp(err_path, result.err, sizeof result.err);
    unlink(out_path);
    unlink(err_path);
    return &result;
}

/* A path under the build's absolute CLI path, made absolute if relative. */
static void absolute_cli(void)
{
    const char *cli = getenv("SEPCONV_CLI");
    const char *root = getenv("SEPCONV_ROOT");
    if (cli && cli[0] != '/' && root) {
        static char path[4096];
        snprintf(path, sizeof path, "%s/%s", root, cli);
        setenv("SEPCONV_CLI", path, 1);
    }
}

START_TEST(help_and_version)
{
    outcome *r = run_cli("--help");
    ck_assert_int_eq(r->code, 0);
    ck_assert_ptr_nonnull(strstr(r->out, "usage: sepconv <command>"));
    ck_assert_ptr_nonnull(strstr(r->out, "cost"));
    ck_assert_str_eq(r->err, "");
    r = run_cli("cost --help");
    ck_assert_int_eq(r->code, 0);
    ck_assert_ptr_nonnull(strstr(r->out, "usage: sepconv cost SPEC|FILE"));
    r = run_cli("--version");
    ck_assert_int_eq(r->code, 0);
    ck_assert_ptr_nonnull(strstr(r->out, SEPCONV_VERSION));
}
END_TEST

START_TEST(bad_usage_exits_2)
{
    outcome *r = run_cli("");
    ck_assert_int_eq(r->code, 2);
    ck_assert_ptr_nonnull(strstr(r->err, "usage"));
    r = run_cli("frobnicate");
    ck_assert_int_eq(r->code, 2);
    ck_assert_ptr_nonnull(strstr(r->err, "unknown command 'frobnicate'"));
    ck_assert_str_eq(r->out, "");
    r = run_cli("cost --bogus df=8 m=4 n=4 dk=3");
    ck_assert_int_eq(r->code, 2);
    ck_assert_ptr_nonnull(strstr(r->err, "unknown option '--bogus'"));
    r = run_cli("cost");
    ck_assert_int_eq(r->code, 2);
    ck_assert_ptr_nonnull(strstr(r->err, "missing SPEC or FILE"));
    r = run_cli("reference df=4 m=2 n=2 dk=3 --repeat 0");
    ck_assert_int_eq(r->code, 2);
    r = run_cli("reference df=4 m=2 n=2 dk=3 --repeat");
    ck_assert_int_eq(r->code, 2);
}
END_TEST

START_TEST(bad_specs_exit_1_with_the_reason)
{
    outcome *r = run_cli("cost op=sep df=0 m=32 n=64 dk=3");
    ck_assert_int_eq(r->code, 1);
    ck_assert_str_eq(r->out, "");
    ck_assert_str_eq(r->err, "sepconv cost: df=0 is out of range "
                             "(expected 1..2147483647)\n");
    r = run_cli("cost examples/does-not-exist.layers");
    ck_assert_int_eq(r->code, 1);
    ck_assert_ptr_nonnull(strstr(r->err, "cannot open"));
    r = run_cli("cost op=dw df=2147483647 m=2147483647 dk=1");
    ck_assert_int_eq(r->code, 1);
    ck_assert_ptr_nonnull(strstr(r->err, "64 bits"));
}
END_TEST

START_TEST(cost_of_one_layer)
{
    outcome *r = run_cli("cost op=sep df=14 m=512 n=1024 dk=3");
    ck_assert_int_eq(r->code, 0);
    ck_assert_ptr_nonnull(strstr(r->out, "ratio to conv   0.112"));
    /* 14*14*512*9 + 14*14*512*1024 */
    ck_assert_ptr_nonnull(strstr(r->out, "multiply-adds   103663616 (depthwise "
                                         "903168, pointwise 102760448)"));
    ck_assert_str_eq(r->err, "");
}
END_TEST

START_TEST(cost_of_mobilenet)
{
    outcome *r = run_cli("cost examples/mobilenet_v1.layers");
    ck_assert_int_eq(r->code, 0);
    ck_assert_ptr_nonnull(strstr(r->out, "sep13"));
    ck_assert_ptr_nonnull(strstr(r->out, "total: 568.740 million multiply-adds, "
                                         "4221032 parameters"));
    ck_assert_ptr_nonnull(strstr(r->out, "pointwise 540.516"));
    r = run_cli("cost examples/mobilenet_v1.layers --json");
    ck_assert_int_eq(r->code, 0);
    ck_assert_int_eq(r->out[0], '{');
    ck_assert_ptr_nonnull(strstr(r->out, "\"totals\":{\"macs\":568740352,"));
    ck_assert_ptr_nonnull(strstr(r->out, "\"spec\":\"op=sep name=sep13 df=7 m=1024"));
}
END_TEST

START_TEST(reference_reports_time)
{
    outcome *r = run_cli("reference op=sep df=8 m=4 n=8 dk=3 --repeat 2 --json");
    ck_assert_int_eq(r->code, 0);
    ck_assert_ptr_nonnull(strstr(r->out, "\"repeat\":2,\"median_ms\":"));
    ck_assert_ptr_nonnull(strstr(r->out, "\"gflops\":"));
}
END_TEST

/* Reads a whole small file into a static buffer. */
static const char *file_text(const char *path)
{
    static char text[1 << 20];
    slurp(path, text, sizeof text);
    return text;
}

START_TEST(gen_reproduces_itself)
{
    outcome *r = run_cli("gen op=sep df=6 m=3 n=5 dk=3 stride=2 bias=1 act=relu6 "
                         "--schedule fuse=0,oc_block=16");
    ck_assert_int_eq(r->code, 0);
    char *first = strdup(r->out);
    /* the generated file names the command that makes it again */
    const char *line = strstr(first, "reproduce: ");
    ck_assert_ptr_nonnull(line);
    char command[1024];
    size_t length = strcspn(line + 11, "\n");
    ck_assert_uint_lt(length, sizeof command);
    memcpy(command, line + 11, length);
    command[length] = '\0';
    ck_assert_ptr_nonnull(strstr(command, "sepconv gen 'op=sep df=6"));
    ck_assert_ptr_nonnull(strstr(command, "oc_block=16"));
    r = run_cli(command + strlen("sepconv "));
    ck_assert_int_eq(r->code, 0);
    ck_assert_str_eq(r->out, first); /* byte for byte */
    free(first);
}
END_TEST

START_TEST(gen_writes_a_buildable_kernel_and_header)
{
    outcome *r = run_cli("gen op=dw df=6 m=5 dk=3 bias=1 --name my_dw "
                         "-o /tmp/sepconv-cli-dw.c --header /tmp/sepconv-cli-dw.h --json");
    ck_assert_int_eq(r->code, 0);
    ck_assert_ptr_nonnull(strstr(r->out, "\"symbol\":\"my_dw\""));
    ck_assert_ptr_nonnull(strstr(r->out, "\"template\":\"depthwise.c.in\""));
    ck_assert_ptr_nonnull(strstr(file_text("/tmp/sepconv-cli-dw.h"),
                                 "#define MY_DW_OUTPUT_ELEMENTS 180L"));
    /* a caller that includes the header compiles against the kernel */
    FILE *main_file = fopen("/tmp/sepconv-cli-main.c", "w");
    fputs("#include \"sepconv-cli-dw.h\"\n"
          "int main(void) {\n"
          "    static float x[MY_DW_INPUT_ELEMENTS], w[MY_DW_WEIGHT_ELEMENTS],\n"
          "        b[MY_DW_BIAS_ELEMENTS], y[MY_DW_OUTPUT_ELEMENTS];\n"
          "    for (int i = 0; i < MY_DW_WEIGHT_ELEMENTS; i++) w[i] = 1;\n"
          "    for (int i = 0; i < MY_DW_INPUT_ELEMENTS; i++) x[i] = 1;\n"
          "    my_dw(x, w, b, 0, 0, 0, y, 0, 0, MY_DW_ROWS);\n"
          "    return y[5 * 7] == 9.0f ? 0 : 1; /* an interior pixel: 9 taps */\n"
          "}\n", main_file);
    fclose(main_file);
    ck_assert_int_eq(system("cc -std=c99 -Wall -Wextra -Werror -O2 -o /tmp/sepconv-cli-main "
                            "/tmp/sepconv-cli-main.c /tmp/sepconv-cli-dw.c && "
                            "/tmp/sepconv-cli-main"), 0);
    unlink("/tmp/sepconv-cli-main");
    unlink("/tmp/sepconv-cli-main.c");
    unlink("/tmp/sepconv-cli-dw.c");
    unlink("/tmp/sepconv-cli-dw.h");
}
END_TEST

START_TEST(gen_reports_bad_input)
{
    outcome *r = run_cli("gen op=dw df=6 m=5 dk=3 --schedule oc_block=8");
    ck_assert_int_eq(r->code, 1);
    ck_assert_ptr_nonnull(strstr(r->err, "op=dw has no schedule knob 'oc_block'"));
    r = run_cli("gen op=dw df=6 m=5 dk=3 --target avx9");
    ck_assert_int_eq(r->code, 2);
    r = run_cli("gen op=sep df=112 m=32 n=64 dk=3 --schedule unroll=full");
    ck_assert_int_eq(r->code, 1);
    ck_assert_ptr_nonnull(strstr(r->err, "source-size budget of 4194304 bytes"));
    r = run_cli("gen op=dw df=6 m=5 dk=3 --json");
    ck_assert_int_eq(r->code, 2);
    /* a broken template in a user's directory: template:line: message */
    mkdir("/tmp/sepconv-cli-templates", 0700);
    FILE *t = fopen("/tmp/sepconv-cli-templates/depthwise.c.in", "w");
    fputs("/* ok */\n$local x = nil + 1\n", t);
    fclose(t);
    r = run_cli("gen op=dw df=6 m=5 dk=3 --templates /tmp/sepconv-cli-templates");
    ck_assert_int_eq(r->code, 1);
    ck_assert_ptr_nonnull(strstr(r->err, "/tmp/sepconv-cli-templates/depthwise.c.in:2: "
                                         "attempt to perform arithmetic on a nil value"));
    unlink("/tmp/sepconv-cli-templates/depthwise.c.in");
    rmdir("/tmp/sepconv-cli-templates");
}
END_TEST

START_TEST(schedules_lists_knobs)
{
    outcome *r = run_cli("schedules op=sep df=8 m=4 n=8 dk=3 --target avx2");
    ck_assert_int_eq(r->code, 0);
    ck_assert_ptr_nonnull(strstr(r->out, "knobs of op=sep for target avx2"));
    ck_assert_ptr_nonnull(strstr(r->out, "channel_block  8 | 16 | 32 | 64"));
    ck_assert_ptr_nonnull(strstr(r->out, "unroll         none | row | full"));
    r = run_cli("schedules op=pw df=8 m=4 n=8 --json");
    ck_assert_int_eq(r->code, 0);
    ck_assert_ptr_nonnull(strstr(r->out, "{\"name\":\"pack\",\"values\":[0,1],"
                                         "\"default\":1,"));
}
END_TEST

/* Writes seeded random values of a tensor to a .npy file. */
static void write_random(const sepconv_layer *layer, sepconv_tensor_kind kind,
                         const float *values, const char *file)
{
    int64_t shape[SEPCONV_RANK_MAX];
    int rank;
    sepconv_tensor_shape(layer, kind, shape, &rank);
    ck_assert_int_eq(sepconv_npy_write(file, values, shape, rank, NULL), SEPCONV_OK);
}

START_TEST(run_on_npy_files)
{
    const char *spec = "op=sep df=7 m=5 n=6 dk=3 stride=2 bias=1 act=relu layout=nchw";
    sepconv_layer layer = parse_layer(spec);
    sepconv_buffers b;
    ck_assert_int_eq(sepconv_buffers_alloc(&layer, &b, NULL), SEPCONV_OK);
    sepconv_buffers_fill_random(&layer, &b, 77);
    write_random(&layer, SEPCONV_TENSOR_INPUT, b.input, "/tmp/sepconv-run-x.npy");
    write_random(&layer, SEPCONV_TENSOR_WEIGHTS, b.weights, "/tmp/sepconv-run-w.npy");
    write_random(&layer, SEPCONV_TENSOR_BIAS, b.bias, "/tmp/sepconv-run-b.npy");
    write_random(&layer, SEPCONV_TENSOR_PW_WEIGHTS, b.pw_weights, "/tmp/sepconv-run-w2.npy");
    write_random(&layer, SEPCONV_TENSOR_PW_BIAS, b.pw_bias, "/tmp/sepconv-run-b2.npy");
    const char *files = "--input /tmp/sepconv-run-x.npy --weights /tmp/sepconv-run-w.npy "
                        "--bias /tmp/sepconv-run-b.npy --pw-weights /tmp/sepconv-run-w2.npy "
                        "--pw-bias /tmp/sepconv-run-b2.npy --output /tmp/sepconv-run-y.npy";
    char args[1024];
    snprintf(args, sizeof args, "run %s %s", spec, files);
    outcome *r = run_cli(args);
    ck_assert_msg(r->code == 0, "%s", r->err);
    sepconv_array y;
    ck_assert_int_eq(sepconv_npy_read("/tmp/sepconv-run-y.npy", &y, NULL), SEPCONV_OK);
    ck_assert_int_eq(y.rank, 4);
    ck_assert_int_eq(y.shape[1], 6); /* nchw: (batch, c, h, w) */
    ck_assert_int_eq(y.shape[2], 4);
    sepconv_tensors t = sepconv_buffers_tensors(&b);
    double *magnitude = malloc((size_t)layer.output_elements * sizeof(double));
    ck_assert_int_eq(sepconv_reference_run(&layer, &t, b.output, NULL), SEPCONV_OK);
    ck_assert_int_eq(sepconv_reference_magnitude(&layer, &t, magnitude, NULL), SEPCONV_OK);
    sepconv_comparison comparison;
    sepconv_error error;
    ck_assert_msg(sepconv_compare(&layer, b.output, y.data, magnitude, &comparison,
                                  &error) == SEPCONV_OK, "%s", error.message);
    sepconv_array_free(&y);
    free(magnitude);
    /* the weights of another layout are refused with both shapes named */
    snprintf(args, sizeof args, "run %s %s", "op=sep df=7 m=5 n=6 dk=3 stride=2 bias=1 "
             "act=relu layout=nhwc", files);
    r = run_cli(args);
    ck_assert_int_eq(r->code, 1);
    ck_assert_ptr_nonnull(strstr(r->err, "/tmp/sepconv-run-x.npy has shape (1, 5, 7, 7), "
                                         "but layout=nhwc needs (1, 7, 7, 5)"));
    /* a tensor the layer lacks, and a missing one */
    r = run_cli("run op=dw df=7 m=5 dk=3 --input /tmp/sepconv-run-x.npy --weights "
                "/tmp/sepconv-run-w.npy --pw-bias /tmp/sepconv-run-b2.npy --output "
                "/tmp/sepconv-run-y.npy");
    ck_assert_int_eq(r->code, 1);
    r = run_cli("run op=dw df=7 m=5 dk=3 --input /tmp/sepconv-run-x.npy --output y.npy");
    ck_assert_int_eq(r->code, 2);
    const char *names[] = {"x", "w", "b", "w2", "b2", "y"};
    for (int i = 0; i < 6; i++) {
        char file[64];
        snprintf(file, sizeof file, "/tmp/sepconv-run-%s.npy", names[i]);
        unlink(file);
    }
    sepconv_buffers_free(&b);
}
END_TEST

/* Counts the lines of a file. */
static int line_count(const char *path)
{
    FILE *file = fopen(path, "r");
    int lines = 0, c;
    while (file && (c = fgetc(file)) != EOF)
        lines += c == '\n';
    if (file)
        fclose(file);
    return lines;
}

START_TEST(tune_shards_merge_and_best)
{
    const char *logs[] = {"/tmp/sepconv-cli-shard0.jsonl", "/tmp/sepconv-cli-shard1.jsonl",
                          "/tmp/sepconv-cli-merged.jsonl"};
    for (int i = 0; i < 3; i++)
        unlink(logs[i]);
    const char *layer = "op=dw name=tiny df=6 m=8 dk=3";
    char args[512];
    for (int shard = 0; shard < 2; shard++) {
        snprintf(args, sizeof args, "tune %s --strategy random --seed 5 --trials 6 "
                 "--shard %d/2 --log %s", layer, shard, logs[shard]);
        outcome *r = run_cli(args);
        ck_assert_msg(r->code == 0, "%s", r->err);
        /* not a terminal: one plain progress line per candidate */
        ck_assert_ptr_nonnull(strstr(r->err, "tiny 3/3 "));
        ck_assert_ptr_nonnull(strstr(r->out, "rank    ratio  median ms"));
        ck_assert_int_eq(line_count(logs[shard]), 3 + 1); /* and the default's */
    }
    snprintf(args, sizeof args, "log merge %s %s -o %s", logs[0], logs[1], logs[2]);
    outcome *r = run_cli(args);
    ck_assert_int_eq(r->code, 0);
    ck_assert_ptr_nonnull(strstr(r->out, "merged 8 records"));
    ck_assert_int_eq(line_count(logs[2]), 8);
    snprintf(args, sizeof args, "log best %s --backend tcc", logs[2]);
    r = run_cli(args);
    ck_assert_int_eq(r->code, 0);
    ck_assert_ptr_nonnull(strstr(r->out, "op=dw name=tiny df=6 m=8 dk=3"));
    ck_assert_ptr_nonnull(strstr(r->out, "--schedule channel_block="));
    /* the tuned schedule goes into an AOT kernel */
    snprintf(args, sizeof args, "gen %s --schedule best --backend tcc --log %s", layer,
             logs[2]);
    r = run_cli(args);
    ck_assert_int_eq(r->code, 0);
    ck_assert_str_eq(r->err, "");
    snprintf(args, sizeof args, "log merge %s -o %s", logs[0], logs[2]);
    ck_assert_int_eq(run_cli(args)->code, 1); /* never overwrites */
    for (int i = 0; i < 3; i++)
        unlink(logs[i]);
    ck_assert_int_eq(run_cli("tune op=dw df=6 m=8 dk=3 --trials 2 --budget 1")->code, 2);
    ck_assert_int_eq(run_cli("tune op=dw df=6 m=8 dk=3 --shard 2/2")->code, 2);
    ck_assert_int_eq(run_cli("log frobnicate x.jsonl")->code, 2);
}
END_TEST

Suite *cli_suite(void)
{
    absolute_cli();
    Suite *suite = suite_create("cli");
    TCase *c = tcase_create("cli");
    tcase_set_timeout(c, 60);
    tcase_add_test(c, help_and_version);
    tcase_add_test(c, bad_usage_exits_2);
    tcase_add_test(c, bad_specs_exit_1_with_the_reason);
    tcase_add_test(c, cost_of_one_layer);
    tcase_add_test(c, cost_of_mobilenet);
    tcase_add_test(c, reference_reports_time);
    tcase_add_test(c, gen_reproduces_itself);
    tcase_add_test(c, gen_writes_a_buildable_kernel_and_header);
    tcase_add_test(c, gen_reports_bad_input);
    tcase_add_test(c, schedules_lists_knobs);
    tcase_add_test(c, run_on_npy_files);
    tcase_add_test(c, tune_shards_merge_and_best);
    suite_add_tcase(suite, c);
    return suite;
}
