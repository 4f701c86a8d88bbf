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

typedef cli_outcome outcome;

/* Runs `sepconv ARGS` (ARGS already shell-quoted) with standard input from
 * `in` (NULL: /dev/null) and standard output to `to` (NULL: captured in
 * out), capturing standard error. */
static outcome *run_cli_io(const char *args, const char *in, const char *to)
{
    return run_sepconv_in(NULL, in, to, args);
}

/* Runs `sepconv ARGS`, capturing both streams. */
static outcome *run_cli(const char *args)
{
    return run_cli_io(args, NULL, NULL);
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

START_TEST(help_of_a_command_and_version_command)
{
    /* `help CMD` is `CMD --help`, not the top-level help */
    outcome *r = run_cli("help gen");
    ck_assert_int_eq(r->code, 0);
    ck_assert_ptr_nonnull(strstr(r->out, "usage: sepconv gen SPEC"));
    ck_assert_ptr_null(strstr(r->out, "usage: sepconv <command>"));
    char *help = strdup(r->out);
    r = run_cli("gen --help");
    ck_assert_str_eq(r->out, help);
    free(help);
    r = run_cli("help frobnicate");
    ck_assert_int_eq(r->code, 2);
    ck_assert_ptr_nonnull(strstr(r->err, "unknown command 'frobnicate'"));
    r = run_cli("version");
    ck_assert_int_eq(r->code, 0);
    ck_assert_ptr_nonnull(strstr(r->out, "sepconv " SEPCONV_VERSION "\n"));
    ck_assert_ptr_nonnull(strstr(r->out, "Lua 5.4"));
    ck_assert_str_eq(r->err, "");
}
END_TEST

/* Runs `sepconv ARGS` with one environment variable set, restoring it. */
static outcome *run_cli_with(const char *name, const char *value, const char *args)
{
    const char *was = getenv(name);
    char *saved = was ? strdup(was) : NULL;
    setenv(name, value, 1);
    outcome *r = run_cli(args);
    if (saved)
        setenv(name, saved, 1);
    else
        unsetenv(name);
    free(saved);
    return r;
}

/* The names of every environment variable the sources read, one a line. */
static char *variables_read(void)
{
    static char names[4096];
    char command[1024];
    const char *root = getenv("SEPCONV_ROOT");
    snprintf(command, sizeof command, "cd '%s' && cat runtime/*/*.c gen/*.c | "
             "grep -o 'getenv(\"[A-Za-z_0-9]*\")' | sed 's/getenv(\"//; s/\")//' | "
             "sort -u", root ? root : ".");
    FILE *pipe = popen(command, "r");
    ck_assert_ptr_nonnull(pipe);
    size_t got = fread(names, 1, sizeof names - 1, pipe);
    names[got] = '\0';
    ck_assert_int_eq(pclose(pipe), 0);
    return names;
}

START_TEST(help_names_the_cache_and_every_variable)
{
    char *names = variables_read();
    ck_assert_ptr_nonnull(strstr(names, "XDG_CACHE_HOME\n")); /* the scan works */
    const char *commands[] = {"--help", "jit --help", "run --help", "gen --help",
                              "tune --help"};
    for (size_t c = 0; c < sizeof commands / sizeof commands[0]; c++) {
        outcome *r = run_cli(commands[c]);
        ck_assert_int_eq(r->code, 0);
        char copy[4096];
        snprintf(copy, sizeof copy, "%s", names);
        for (char *name = strtok(copy, "\n"); name; name = strtok(NULL, "\n"))
            ck_assert_msg(strstr(r->out, name) != NULL, "'sepconv %s' does not name $%s",
                          commands[c], name);
    }
    /* the cache directory named is the one in effect */
    outcome *r = run_cli_with("XDG_CACHE_HOME", "/tmp/sepconv-cli-xdg", "jit --help");
    ck_assert_int_eq(r->code, 0);
    ck_assert_ptr_nonnull(strstr(r->out, "/tmp/sepconv-cli-xdg/sepconv"));
    ck_assert_ptr_null(strstr(r->out, "~/.cache"));
    r = run_cli_with("XDG_CACHE_HOME", "/tmp/sepconv-cli-xdg", "tune --help");
    ck_assert_int_ne(access("/tmp/sepconv-cli-xdg", F_OK), 0); /* help makes nothing */
    ck_assert_ptr_nonnull(strstr(r->out, "/tmp/sepconv-cli-xdg/sepconv/tuning.jsonl"));
    ck_assert_ptr_null(strstr(r->out, "~/.cache"));
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

START_TEST(bad_specs_exit_2_with_the_reason)
{
    /* a spec typed on the command line is usage, for every command */
    outcome *r = run_cli("cost op=sep df=0 m=32 n=64 dk=3");
    ck_assert_int_eq(r->code, 2);
    ck_assert_str_eq(r->out, "");
    ck_assert_str_eq(r->err, "sepconv cost: df=0 is out of range "
                             "(expected 1..2147483647)\nTry 'sepconv cost --help'.\n");
    const char *commands[] = {"gen", "jit", "schedules", "reference", "tune",
                              "run --input x.npy --weights w.npy --output y.npy"};
    for (size_t c = 0; c < sizeof commands / sizeof commands[0]; c++) {
        char args[256];
        snprintf(args, sizeof args, "%s op=dw df=0 m=4 dk=3", commands[c]);
        r = run_cli(args);
        ck_assert_msg(r->code == 2, "'sepconv %s' exits %d", args, r->code);
        ck_assert_ptr_nonnull(strstr(r->err, "df=0 is out of range"));
        ck_assert_str_eq(r->out, "");
    }
    r = run_cli("cost op=dw df=2147483647 m=2147483647 dk=1");
    ck_assert_int_eq(r->code, 2);
    ck_assert_ptr_nonnull(strstr(r->err, "64 bits"));
    /* so is a --schedule that does not suit the layer */
    r = run_cli("jit op=dw df=6 m=4 dk=3 --schedule tile_w=3");
    ck_assert_int_eq(r->code, 2);
    ck_assert_str_eq(r->out, "");
    /* a file that cannot be read, or holds a bad spec, is a failure */
    r = run_cli("cost examples/does-not-exist.layers");
    ck_assert_int_eq(r->code, 1);
    ck_assert_ptr_nonnull(strstr(r->err, "cannot open"));
    FILE *model = fopen("/tmp/sepconv-cli-bad.layers", "w");
    fputs("op=dw df=6 m=4 dk=3\nop=dw df=0 m=4 dk=3\n", model);
    fclose(model);
    r = run_cli("cost /tmp/sepconv-cli-bad.layers");
    ck_assert_int_eq(r->code, 1);
    ck_assert_ptr_nonnull(strstr(r->err, "/tmp/sepconv-cli-bad.layers:2: df=0"));
    r = run_cli_io("cost -", "/tmp/sepconv-cli-bad.layers", NULL);
    ck_assert_int_eq(r->code, 1);
    ck_assert_ptr_nonnull(strstr(r->err, "standard input:2: df=0"));
    unlink("/tmp/sepconv-cli-bad.layers");
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
    read_text_file(path, text, sizeof text);
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
    ck_assert_int_eq(r->code, 2); /* the command line is wrong */
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

START_TEST(run_int8_through_the_reference)
{
    /* a 1x1 pointwise layer worked by hand with TFLite's arithmetic:
     * in_scale 0.5, in_zero 1, out_scale 0.25, out_zero -3; input (5, -2),
     * weights [[3, -1], [4, 2]] (m, n), bias (10, -7), weight scales
     * (0.5, 0.125).  Channel 0: 10 + 4*3 + (-3)*4 = 10, times 0.5*0.5/0.25
     * = 1, + -3 = 7.  Channel 1: -7 + 4*(-1) + (-3)*2 = -17, times 0.25 =
     * -4.25, which rounds to -4, + -3 = -7; relu clamps it to out_zero -3. */
    const int8_t x[2] = {5, -2}, w[4] = {3, -1, 4, 2};
    const int32_t b[2] = {10, -7};
    const float scales[2] = {0.5f, 0.125f}, wrong[3] = {1, 1, 1};
    ck_assert_int_eq(sepconv_npy_write_as("/tmp/sepconv-q-x.npy", SEPCONV_NPY_INT8, x,
                                          (int64_t[]){1, 1, 1, 2}, 4, NULL), SEPCONV_OK);
    ck_assert_int_eq(sepconv_npy_write_as("/tmp/sepconv-q-w.npy", SEPCONV_NPY_INT8, w,
                                          (int64_t[]){2, 2}, 2, NULL), SEPCONV_OK);
    ck_assert_int_eq(sepconv_npy_write_as("/tmp/sepconv-q-b.npy", SEPCONV_NPY_INT32, b,
                                          (int64_t[]){2}, 1, NULL), SEPCONV_OK);
    ck_assert_int_eq(sepconv_npy_write("/tmp/sepconv-q-s.npy", scales, (int64_t[]){2}, 1,
                                       NULL), SEPCONV_OK);
    ck_assert_int_eq(sepconv_npy_write("/tmp/sepconv-q-s3.npy", wrong, (int64_t[]){3}, 1,
                                       NULL), SEPCONV_OK);
    const char *spec = "op=pw df=1 m=2 n=2 bias=1 dtype=int8 in_scale=0.5 in_zero=1 "
                       "out_scale=0.25 out_zero=-3";
    const char *files = "--input /tmp/sepconv-q-x.npy --weights /tmp/sepconv-q-w.npy "
                        "--bias /tmp/sepconv-q-b.npy --output /tmp/sepconv-q-y.npy";
    const struct { const char *act; int8_t y0, y1; } cases[] = {{"none", 7, -7},
                                                               {"relu", 7, -3}};
    char args[1024];
    /* through the reference and through the generated kernel of each backend */
    const char *ways[] = {"--reference", "--backend tcc", "--backend cc"};
    for (int i = 0; i < 6; i++) {
        unlink("/tmp/sepconv-q-y.npy");
        snprintf(args, sizeof args, "run %s act=%s %s --weight-scales /tmp/sepconv-q-s.npy "
                 "%s", spec, cases[i % 2].act, files, ways[i / 2]);
        outcome *r = run_cli(args);
        ck_assert_msg(r->code == 0, "%s", r->err);
        sepconv_array y;
        sepconv_error error;
        ck_assert_msg(sepconv_npy_read_as("/tmp/sepconv-q-y.npy", SEPCONV_NPY_INT8, &y,
                                          &error) == SEPCONV_OK, "%s", error.message);
        ck_assert_int_eq(y.count, 2);
        ck_assert_msg(((const int8_t *)y.values)[0] == cases[i % 2].y0 &&
                          ((const int8_t *)y.values)[1] == cases[i % 2].y1,
                      "%s: (%d, %d), worked by hand (%d, %d)", args,
                      ((const int8_t *)y.values)[0], ((const int8_t *)y.values)[1],
                      cases[i % 2].y0, cases[i % 2].y1);
        sepconv_array_free(&y);
    }
    /* the scales: missing, of the wrong length, or given to a float layer */
    snprintf(args, sizeof args, "run %s %s --reference", spec, files);
    outcome *r = run_cli(args);
    ck_assert_int_eq(r->code, 1);
    ck_assert_ptr_nonnull(strstr(r->err, "missing --weight-scales FILE.npy (dtype=int8 needs 2"));
    snprintf(args, sizeof args, "run %s %s --weight-scales /tmp/sepconv-q-s3.npy --reference",
             spec, files);
    r = run_cli(args);
    ck_assert_int_eq(r->code, 1);
    ck_assert_ptr_nonnull(strstr(r->err, "--weight-scales needs shape (2)"));
    r = run_cli("run op=pw df=1 m=2 n=2 --input /tmp/sepconv-q-x.npy --weights "
                "/tmp/sepconv-q-w.npy --output /tmp/sepconv-q-y.npy --weight-scales "
                "/tmp/sepconv-q-s.npy --reference");
    ck_assert_int_eq(r->code, 2);
    ck_assert_ptr_nonnull(strstr(r->err, "the layer is float32"));
    /* int8 files for a float layer, and float32 for an int8 one, name the dtypes */
    r = run_cli("run op=pw df=1 m=2 n=2 --input /tmp/sepconv-q-x.npy --weights "
                "/tmp/sepconv-q-w.npy --output /tmp/sepconv-q-y.npy --reference");
    ck_assert_int_eq(r->code, 1);
    ck_assert_ptr_nonnull(strstr(r->err, "dtype '|i1' is not float32"));
    snprintf(args, sizeof args, "run %s --input /tmp/sepconv-q-s.npy --weights "
             "/tmp/sepconv-q-w.npy --bias /tmp/sepconv-q-b.npy --output /tmp/sepconv-q-y.npy "
             "--weight-scales /tmp/sepconv-q-s.npy --reference", spec);
    r = run_cli(args);
    ck_assert_int_eq(r->code, 1);
    ck_assert_ptr_nonnull(strstr(r->err, "dtype '<f4' is not int8"));
    /* a zero weight scale is refused by name */
    const float zero[2] = {0.5f, 0};
    ck_assert_int_eq(sepconv_npy_write("/tmp/sepconv-q-s0.npy", zero, (int64_t[]){2}, 1,
                                       NULL), SEPCONV_OK);
    snprintf(args, sizeof args, "run %s %s --weight-scales /tmp/sepconv-q-s0.npy --reference",
             spec, files);
    r = run_cli(args);
    ck_assert_int_eq(r->code, 1);
    ck_assert_ptr_nonnull(strstr(r->err, "weight_scales"));
    /* sep: two stages' files and scales, nchw; the CLI's bytes are the
     * library's int8 reference's (tested on its own in test_quantize.c) */
    const char *sep_spec = "op=sep df=5 m=3 n=4 dk=3 bias=1 act=relu6 layout=nchw "
                           "dtype=int8 in_scale=0.05 in_zero=-4 mid_scale=0.1 mid_zero=2 "
                           "out_scale=0.2 out_zero=-1";
    sepconv_layer sep = parse_layer(sep_spec);
    int8_t sx[75], sw[27], sw2[12];
    int32_t sb[3], sb2[4];
    float ss[3] = {0.02f, 0.03f, 0.05f}, ss2[4] = {0.01f, 0.02f, 0.015f, 0.04f};
    uint32_t state = 12345;
    for (int i = 0; i < 75; i++)
        sx[i] = (int8_t)((state = state * 1103515245u + 12345u) >> 24);
    for (int i = 0; i < 27; i++)
        sw[i] = (int8_t)((state = state * 1103515245u + 12345u) >> 24);
    for (int i = 0; i < 12; i++)
        sw2[i] = (int8_t)((state = state * 1103515245u + 12345u) >> 24);
    for (int i = 0; i < 3; i++)
        sb[i] = (int32_t)(state = state * 1103515245u + 12345u) % 2000;
    for (int i = 0; i < 4; i++)
        sb2[i] = (int32_t)(state = state * 1103515245u + 12345u) % 2000;
    const struct { sepconv_tensor_kind kind; sepconv_npy_type type; const void *data;
                   const char *file; } sep_files[] = {
        {SEPCONV_TENSOR_INPUT, SEPCONV_NPY_INT8, sx, "/tmp/sepconv-q-x.npy"},
        {SEPCONV_TENSOR_WEIGHTS, SEPCONV_NPY_INT8, sw, "/tmp/sepconv-q-w.npy"},
        {SEPCONV_TENSOR_BIAS, SEPCONV_NPY_INT32, sb, "/tmp/sepconv-q-b.npy"},
        {SEPCONV_TENSOR_PW_WEIGHTS, SEPCONV_NPY_INT8, sw2, "/tmp/sepconv-q-w2.npy"},
        {SEPCONV_TENSOR_PW_BIAS, SEPCONV_NPY_INT32, sb2, "/tmp/sepconv-q-b2.npy"}};
    for (int i = 0; i < 5; i++) {
        int64_t shape[SEPCONV_RANK_MAX];
        int rank;
        sepconv_tensor_shape(&sep, sep_files[i].kind, shape, &rank);
        ck_assert_int_eq(sepconv_npy_write_as(sep_files[i].file, sep_files[i].type,
                                              sep_files[i].data, shape, rank, NULL),
                         SEPCONV_OK);
    }
    ck_assert_int_eq(sepconv_npy_write("/tmp/sepconv-q-s.npy", ss, (int64_t[]){3}, 1, NULL),
                     SEPCONV_OK);
    ck_assert_int_eq(sepconv_npy_write("/tmp/sepconv-q-s2.npy", ss2, (int64_t[]){4}, 1, NULL),
                     SEPCONV_OK);
    const char *sep_files_args = "--input /tmp/sepconv-q-x.npy --weights /tmp/sepconv-q-w.npy "
        "--bias /tmp/sepconv-q-b.npy --pw-weights /tmp/sepconv-q-w2.npy --pw-bias "
        "/tmp/sepconv-q-b2.npy --weight-scales /tmp/sepconv-q-s.npy --reference";
    snprintf(args, sizeof args, "run %s %s --output /tmp/sepconv-q-y.npy", sep_spec,
             sep_files_args);
    r = run_cli(args);
    ck_assert_int_eq(r->code, 1);
    ck_assert_ptr_nonnull(strstr(r->err, "missing --pw-weight-scales"));
    snprintf(args, sizeof args, "run %s %s --pw-weight-scales /tmp/sepconv-q-s2.npy "
             "--output /tmp/sepconv-q-y.npy", sep_spec, sep_files_args);
    r = run_cli(args);
    ck_assert_msg(r->code == 0, "%s", r->err);
    /* without --reference, through its kernel (the two stages' kernels) */
    char kernel_args[1200];
    snprintf(kernel_args, sizeof kernel_args, "%s", args);
    *strstr(kernel_args, " --reference") = '\0';
    strcat(kernel_args, " --pw-weight-scales /tmp/sepconv-q-s2.npy --output /tmp/sepconv-q-y2.npy");
    outcome *through_kernel = run_cli(kernel_args);
    ck_assert_msg(through_kernel->code == 0, "%s", through_kernel->err);
    sepconv_qtensors q = {sx, sw, sw2, sb, sb2, ss, ss2};
    int8_t expected[100];
    ck_assert_int_eq(sepconv_reference_run_int8(&sep, &q, expected, NULL), SEPCONV_OK);
    for (int way = 0; way < 2; way++) {
        sepconv_array y;
        ck_assert_int_eq(sepconv_npy_read_as(way ? "/tmp/sepconv-q-y2.npy"
                                                 : "/tmp/sepconv-q-y.npy",
                                             SEPCONV_NPY_INT8, &y, NULL),
                         SEPCONV_OK);
        ck_assert_int_eq(y.count, sep.output_elements);
        ck_assert_int_eq(y.shape[1], 4); /* nchw */
        ck_assert_msg(memcmp(y.values, expected, (size_t)y.count) == 0,
                      "the int8 sep %s differs from the oracle",
                      way ? "through its kernel" : "through --reference");
        sepconv_array_free(&y);
    }
    /* a pointwise scale for a layer without a pointwise stage */
    snprintf(args, sizeof args, "run %s %s --pw-weight-scales /tmp/sepconv-q-s2.npy",
             spec, files);
    r = run_cli(args);
    ck_assert_int_eq(r->code, 2);
    ck_assert_ptr_nonnull(strstr(r->err, "only op=sep has a pointwise stage"));
    /* jit takes int8 conv, dw and pw layers: made, verified bit for bit, timed */
    const char *jits[] = {"jit op=dw df=8 m=8 dk=3 stride=2 bias=1 act=relu6 dtype=int8 "
                          "in_scale=0.05 in_zero=3 out_scale=0.1 out_zero=-7 --json",
                          "jit op=conv df=6 m=3 n=4 dk=3 dtype=int8 in_scale=0.05 "
                          "out_scale=0.1 --backend cc --threads 2 --json"};
    for (int i = 0; i < 2; i++) {
        r = run_cli(jits[i]);
        ck_assert_msg(r->code == 0, "%s: %s", jits[i], r->err);
        ck_assert_ptr_nonnull(strstr(r->out, "\"verified\":true"));
    }
    r = run_cli("jit op=sep df=6 m=4 n=4 dk=3 bias=1 dtype=int8 in_scale=0.05 mid_scale=0.1 "
                "out_scale=0.1 --json");
    ck_assert_msg(r->code == 0, "jit of an int8 sep: %s", r->err);
    ck_assert_ptr_nonnull(strstr(r->out, "\"verified\":true"));
    const char *made[] = {"x", "w", "b", "s", "s3", "s0", "y", "w2", "b2", "s2"};
    for (int i = 0; i < 10; i++) {
        snprintf(args, sizeof args, "/tmp/sepconv-q-%s.npy", made[i]);
        unlink(args);
    }
}
END_TEST

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
    /* (pw: on tcc's micro-kernels a dw layer's schedules are all one kernel) */
    const char *layer = "op=pw name=tiny df=6 m=8 n=16";
    char args[512];
    for (int shard = 0; shard < 2; shard++) {
        snprintf(args, sizeof args, "tune %s --strategy random --seed 5 --trials 6 "
                 "--shard %d/2 --log %s", layer, shard, logs[shard]);
        outcome *r = run_cli(args);
        ck_assert_msg(r->code == 0, "%s", r->err);
        /* not a terminal: one plain progress line per candidate */
        ck_assert_ptr_nonnull(strstr(r->err, "tiny 3/3 "));
        ck_assert_ptr_nonnull(strstr(r->out, "rank    ratio  median ms"));
        /* and the default's, and the (three) best timed again */
        ck_assert_int_eq(line_count(logs[shard]), 3 + 1 + 3);
    }
    snprintf(args, sizeof args, "log merge %s %s -o %s", logs[0], logs[1], logs[2]);
    outcome *r = run_cli(args);
    ck_assert_int_eq(r->code, 0);
    ck_assert_ptr_nonnull(strstr(r->out, "merged 14 records"));
    ck_assert_int_eq(line_count(logs[2]), 14);
    snprintf(args, sizeof args, "log best %s --backend tcc", logs[2]);
    r = run_cli(args);
    ck_assert_int_eq(r->code, 0);
    ck_assert_ptr_nonnull(strstr(r->out, "op=pw name=tiny df=6 m=8 n=16"));
    ck_assert_ptr_nonnull(strstr(r->out, "--schedule pixel_block="));
    /* the tuned schedule goes into an AOT kernel */
    snprintf(args, sizeof args, "gen %s --schedule best --backend tcc --log %s", layer,
             logs[2]);
    r = run_cli(args);
    ck_assert_int_eq(r->code, 0);
    ck_assert_str_eq(r->err, "");
    snprintf(args, sizeof args, "log merge %s -o %s", logs[0], logs[2]);
    ck_assert_int_eq(run_cli(args)->code, 0); /* -o is replaced, atomically */
    ck_assert_int_eq(line_count(logs[2]), 7);
    for (int i = 0; i < 3; i++)
        unlink(logs[i]);
    ck_assert_int_eq(run_cli("tune op=dw df=6 m=8 dk=3 --trials 2 --budget 1")->code, 2);
    ck_assert_int_eq(run_cli("tune op=dw df=6 m=8 dk=3 --shard 2/2")->code, 2);
    ck_assert_int_eq(run_cli("log frobnicate x.jsonl")->code, 2);
}
END_TEST

/* Appends a successful record of `spec` under `schedule` to a tuning log,
 * measured in this machine's environment for tcc, target portable. */
/* The environment the CLI records for tcc/portable on one thread, read from
 * a record it wrote: under valgrind this process sees another CPU (fewer
 * features) than the CLI, which runs natively. */
static sepconv_environment cli_environment(void)
{
    const char *log = "/tmp/sepconv-cli-environment.jsonl";
    unlink(log);
    outcome *r = run_cli("tune op=dw df=4 m=4 dk=3 --trials 1 --quiet --target portable "
                         "--log /tmp/sepconv-cli-environment.jsonl");
    ck_assert_msg(r->code == 0, "%s", r->err);
    sepconv_tune_log records;
    ck_assert_int_eq(sepconv_log_read(log, &records, NULL), SEPCONV_OK);
    ck_assert_uint_gt(records.count, 0);
    sepconv_environment environment = records.records[0].environment;
    sepconv_log_free(&records);
    unlink(log);
    return environment;
}

static void append_record(const char *log, const char *spec, const char *schedule_text)
{
    sepconv_tune_record record;
    memset(&record, 0, sizeof record);
    sepconv_layer layer = parse_layer(spec);
    ck_assert_int_eq(sepconv_layer_format(&layer, record.spec, sizeof record.spec, NULL),
                     SEPCONV_OK);
    snprintf(record.op, sizeof record.op, "%s", sepconv_op_name(layer.op));
    sepconv_schedule schedule;
    ck_assert_int_eq(sepconv_schedule_parse(schedule_text, &layer, SEPCONV_TARGET_PORTABLE,
                                            &schedule, NULL), SEPCONV_OK);
    ck_assert_int_eq(sepconv_schedule_format(&schedule, record.schedule,
                                             sizeof record.schedule, NULL), SEPCONV_OK);
    record.environment = cli_environment();
    snprintf(record.status, sizeof record.status, "ok");
    record.median_ms = 0.5;
    record.baseline_ms = 1.0;
    record.ratio = 0.5;
    snprintf(record.timestamp, sizeof record.timestamp, "2026-01-01T00:00:00Z");
    ck_assert_int_eq(sepconv_log_append(log, &record, NULL), SEPCONV_OK);
}

START_TEST(failed_writes_to_stdout_exit_1)
{
    const char *log = "/tmp/sepconv-cli-full.jsonl";
    unlink(log);
    append_record(log, "op=dw df=6 m=8 dk=3", "channel_block=8");
    const char *commands[] = {"gen op=dw df=6 m=8 dk=3", "cost op=sep df=14 m=8 n=8 dk=3",
                              "cost examples/mobilenet_v1.layers --json",
                              "log show /tmp/sepconv-cli-full.jsonl", "--help",
                              "schedules op=dw df=6 m=8 dk=3",
                              "gen op=dw df=6 m=8 dk=3 -o -"};
    for (size_t c = 0; c < sizeof commands / sizeof commands[0]; c++) {
        outcome *r = run_cli_io(commands[c], NULL, "/dev/full");
        ck_assert_msg(r->code == 1, "'sepconv %s >/dev/full' exits %d", commands[c],
                      r->code);
        ck_assert_msg(strstr(r->err, "error writing standard output: No space left") != NULL,
                      "'sepconv %s >/dev/full' says '%s'", commands[c], r->err);
    }
    /* and the same to a file named with -o */
    outcome *r = run_cli("gen op=dw df=6 m=8 dk=3 -o /dev/full");
    ck_assert_int_eq(r->code, 1);
    ck_assert_ptr_nonnull(strstr(r->err, "error writing /dev/full"));
    /* the output written in full is still a success */
    r = run_cli("log show /tmp/sepconv-cli-full.jsonl");
    ck_assert_int_eq(r->code, 0);
    ck_assert_ptr_nonnull(strstr(r->out, "1 records"));
    unlink(log);
}
END_TEST

/* Writes the input and weights of a layer (seeded) as .npy files x.npy,
 * w.npy (and w2.npy for sep) under /tmp/sepconv-cli-<tag>-. */
static void write_inputs(const sepconv_layer *layer, sepconv_buffers *b, const char *tag)
{
    ck_assert_int_eq(sepconv_buffers_alloc(layer, b, NULL), SEPCONV_OK);
    sepconv_buffers_fill_random(layer, b, 31);
    char path[256];
    snprintf(path, sizeof path, "/tmp/sepconv-cli-%s-x.npy", tag);
    write_random(layer, SEPCONV_TENSOR_INPUT, b->input, path);
    snprintf(path, sizeof path, "/tmp/sepconv-cli-%s-w.npy", tag);
    write_random(layer, SEPCONV_TENSOR_WEIGHTS, b->weights, path);
    if (layer->op == SEPCONV_OP_SEP) {
        snprintf(path, sizeof path, "/tmp/sepconv-cli-%s-w2.npy", tag);
        write_random(layer, SEPCONV_TENSOR_PW_WEIGHTS, b->pw_weights, path);
    }
}

/* Checks an output .npy file against the reference within the tolerance. */
static void assert_matches_reference(const sepconv_layer *layer, const sepconv_buffers *b,
                                     const char *path)
{
    sepconv_array y;
    sepconv_error error;
    ck_assert_msg(sepconv_npy_read(path, &y, &error) == SEPCONV_OK, "%s", error.message);
    ck_assert_int_eq(y.count, layer->output_elements);
    sepconv_tensors t = sepconv_buffers_tensors(b);
    float *expected = malloc((size_t)layer->output_elements * sizeof(float));
    double *magnitude = malloc((size_t)layer->output_elements * sizeof(double));
    ck_assert_int_eq(sepconv_reference_run(layer, &t, expected, NULL), SEPCONV_OK);
    ck_assert_int_eq(sepconv_reference_magnitude(layer, &t, magnitude, NULL), SEPCONV_OK);
    sepconv_comparison comparison;
    ck_assert_msg(sepconv_compare(layer, expected, y.data, magnitude, &comparison, &error) ==
                      SEPCONV_OK, "%s", error.message);
    ck_assert_int_eq(comparison.checked, layer->output_elements);
    free(expected);
    free(magnitude);
    sepconv_array_free(&y);
}

START_TEST(run_every_backend_and_target)
{
    /* every (backend, target) pair this CPU runs works on .npy files; the
     * ISAs it lacks are skipped, and said */
    const char *spec = "op=sep df=9 m=8 n=16 dk=3 act=relu";
    sepconv_layer layer = parse_layer(spec);
    sepconv_buffers b;
    write_inputs(&layer, &b, "pairs");
    const char *files = "--input /tmp/sepconv-cli-pairs-x.npy --weights "
                        "/tmp/sepconv-cli-pairs-w.npy --pw-weights "
                        "/tmp/sepconv-cli-pairs-w2.npy";
    const struct { const char *backend, *target; sepconv_target isa; } pairs[] = {
        {NULL, NULL, SEPCONV_TARGET_AUTO},           /* the defaults: tcc + auto */
        {"tcc", "auto", SEPCONV_TARGET_AUTO},
        {"tcc", "native", SEPCONV_TARGET_AUTO},      /* the old name of auto */
        {"tcc", "portable", SEPCONV_TARGET_PORTABLE},
        {"cc", "portable", SEPCONV_TARGET_PORTABLE},
        {"cc", "auto", SEPCONV_TARGET_AUTO},
        {"tcc", "avx2", SEPCONV_TARGET_AVX2},
        {"cc", "avx2", SEPCONV_TARGET_AVX2},
        {"tcc", "avx512", SEPCONV_TARGET_AVX512},
        {"cc", "avx512", SEPCONV_TARGET_AVX512},
        {"tcc", "neon", SEPCONV_TARGET_NEON},
        {"cc", "neon", SEPCONV_TARGET_NEON},
    };
    char args[1400], what[64];
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        snprintf(what, sizeof what, "cli: run --backend %s --target %s",
                 pairs[i].backend ? pairs[i].backend : "(default)",
                 pairs[i].target ? pairs[i].target : "(default)");
        if (!test_target_runs(pairs[i].isa, what)) {
            /* refused with the CPU named, exit 1, never a crash */
            snprintf(args, sizeof args, "run %s %s --backend %s --target %s --output "
                     "/tmp/sepconv-cli-pairs-y.npy", spec, files, pairs[i].backend,
                     pairs[i].target);
            outcome *r = run_cli(args);
            ck_assert_msg(r->code == 1, "%s: exit %d: %s", what, r->code, r->err);
            ck_assert_msg(strstr(r->err, "which this CPU lacks"), "%s: %s", what, r->err);
            continue;
        }
        unlink("/tmp/sepconv-cli-pairs-y.npy");
        snprintf(args, sizeof args, "run %s %s%s%s%s%s --output /tmp/sepconv-cli-pairs-y.npy",
                 spec, files, pairs[i].backend ? " --backend " : "",
                 pairs[i].backend ? pairs[i].backend : "", pairs[i].target ? " --target " : "",
                 pairs[i].target ? pairs[i].target : "");
        outcome *r = run_cli(args);
        ck_assert_msg(r->code == 0, "%s: %s", what, r->err);
        assert_matches_reference(&layer, &b, "/tmp/sepconv-cli-pairs-y.npy");
    }
    outcome *r = run_cli("run op=dw df=6 m=4 dk=3 --backend gcc --input x --weights w --output y");
    ck_assert_int_eq(r->code, 2);
    const char *names[] = {"x", "w", "w2", "y"};
    for (int i = 0; i < 4; i++) {
        char path[64];
        snprintf(path, sizeof path, "/tmp/sepconv-cli-pairs-%s.npy", names[i]);
        unlink(path);
    }
    sepconv_buffers_free(&b);
}
END_TEST

START_TEST(a_target_the_cpu_lacks_is_refused_naming_its_features)
{
    /* an AVX2-only CPU, simulated: avx512 is refused before any output,
     * exit 1, with what it needs and what the CPU has; auto picks avx2 */
    if (!test_target_runs(SEPCONV_TARGET_AVX2, "cli: jit on a simulated AVX2-only CPU"))
        return;
    setenv("SEPCONV_CPU_HIDE", "avx512f avx512bw avx512cd avx512dq avx512vl", 1);
    const char *commands[] = {
        "jit op=dw df=16 m=64 dk=3 --backend cc --target avx512",
        "jit op=dw df=16 m=64 dk=3 --target avx512",
        "tune op=dw df=16 m=64 dk=3 --trials 1 --log /dev/null --backend cc --target avx512",
        "run op=dw df=16 m=64 dk=3 --target avx512 --input x.npy --weights w.npy "
        "--output y.npy"};
    for (int i = 0; i < 4; i++) {
        outcome *r = run_cli(commands[i]);
        ck_assert_msg(r->code == 1, "%s: exit %d: %s", commands[i], r->code, r->err);
        ck_assert_str_eq(r->out, "");
        ck_assert_msg(strstr(r->err, "target avx512 needs avx512f, which this CPU lacks"),
                      "%s: %s", commands[i], r->err);
        ck_assert_msg(strstr(r->err, " avx2 fma"), "%s", r->err); /* what it has */
        ck_assert_msg(strstr(r->err, "SEPCONV_CPU_HIDE hides avx512f"), "%s", r->err);
    }
    outcome *r = run_cli("jit op=dw df=16 m=64 dk=3 --repeat 1");
    ck_assert_msg(r->code == 0, "%s", r->err);
    ck_assert_msg(strstr(r->out, "backend tcc, target avx2"), "%s", r->out);
    /* gen writes source for other machines: no CPU check */
    r = run_cli("gen op=dw df=16 m=64 dk=3 --backend cc --target avx512");
    ck_assert_msg(r->code == 0, "%s", r->err);
    ck_assert_ptr_nonnull(strstr(r->out, "_mm512_fmadd_ps"));
    /* none left: auto is portable, said once */
    setenv("SEPCONV_CPU_HIDE", "avx512 avx2 fma", 1);
    r = run_cli("jit op=dw df=16 m=64 dk=3 --repeat 1");
    ck_assert_msg(r->code == 0, "%s", r->err);
    ck_assert_msg(strstr(r->out, "backend tcc, target portable"), "%s", r->out);
    const char *note = strstr(r->err, "target auto is portable on this CPU");
    ck_assert_msg(note && !strstr(note + 1, "target auto is portable"), "%s", r->err);
    unsetenv("SEPCONV_CPU_HIDE");
    /* gen for tcc: plain C calling the ISA's micro-kernels, no intrinsics */
    r = run_cli("gen op=sep df=8 m=16 n=16 dk=3 --backend tcc --target avx2");
    ck_assert_msg(r->code == 0, "%s", r->err);
    ck_assert_ptr_nonnull(strstr(r->out, "sepconv_uk_pointwise(in_row"));
    ck_assert_ptr_nonnull(strstr(r->out, "sepconv_uk_depthwise_row(rows"));
    ck_assert_ptr_null(strstr(r->out, "immintrin.h"));
    ck_assert_ptr_null(strstr(r->out, "_mm256"));
    ck_assert_ptr_nonnull(strstr(r->out, "--backend tcc --target avx2"));
#if defined(__x86_64__)
    r = run_cli("jit op=dw df=6 m=4 dk=3 --target neon");
    ck_assert_int_eq(r->code, 1);
    ck_assert_msg(strstr(r->err, "another architecture"), "%s", r->err);
#endif
}
END_TEST

START_TEST(run_writes_npy_to_stdout)
{
    const char *spec = "op=dw df=7 m=5 dk=3 stride=2";
    sepconv_layer layer = parse_layer(spec);
    sepconv_buffers b;
    write_inputs(&layer, &b, "stdout");
    char args[1024];
    const char *to = "/tmp/sepconv-cli-stdout-y.npy";
    unlink(to);
    snprintf(args, sizeof args, "run %s --input /tmp/sepconv-cli-stdout-x.npy --weights "
             "/tmp/sepconv-cli-stdout-w.npy --output -", spec);
    outcome *r = run_cli_io(args, NULL, to);
    ck_assert_msg(r->code == 0, "%s", r->err);
    ck_assert_str_eq(r->err, "");
    assert_matches_reference(&layer, &b, to);
    /* no file called '-' was made */
    char dash[4096];
    snprintf(dash, sizeof dash, "%s/-", getenv("SEPCONV_ROOT") ? getenv("SEPCONV_ROOT") : ".");
    ck_assert_int_ne(access(dash, F_OK), 0);
    /* a full standard output is a failure */
    r = run_cli_io(args, NULL, "/dev/full");
    ck_assert_int_eq(r->code, 1);
    ck_assert_ptr_nonnull(strstr(r->err, "standard output"));
    unlink(to);
    unlink("/tmp/sepconv-cli-stdout-x.npy");
    unlink("/tmp/sepconv-cli-stdout-w.npy");
    sepconv_buffers_free(&b);
}
END_TEST

START_TEST(model_from_stdin)
{
    outcome *r = run_cli_io("cost -", "examples/mobilenet_v1.layers", NULL);
    ck_assert_msg(r->code == 0, "%s", r->err);
    ck_assert_ptr_nonnull(strstr(r->out, "total: 568.740 million multiply-adds, "
                                         "4221032 parameters"));
    FILE *model = fopen("/tmp/sepconv-cli-stdin.layers", "w");
    fputs("# two small layers\nop=dw name=first df=6 m=8 dk=3\n"
          "op=pw name=second df=4 m=4 n=8\n", model);
    fclose(model);
    r = run_cli_io("jit - --only second --repeat 1", "/tmp/sepconv-cli-stdin.layers", NULL);
    ck_assert_msg(r->code == 0, "%s", r->err);
    ck_assert_ptr_nonnull(strstr(r->out, "\nsecond "));
    ck_assert_ptr_null(strstr(r->out, "first"));
    r = run_cli_io("jit - --only first --repeat 1 --json", "/tmp/sepconv-cli-stdin.layers",
                   NULL);
    ck_assert_msg(r->code == 0, "%s", r->err);
    ck_assert_ptr_nonnull(strstr(r->out, "\"name\":\"first\""));
    r = run_cli_io("cost -", "/dev/null", NULL);
    ck_assert_msg(r->code == 1 && strstr(r->err, "standard input: no layers"),
                  "cost of an empty standard input: exit %d, '%s'", r->code, r->err);
    unlink("/tmp/sepconv-cli-stdin.layers");
}
END_TEST

START_TEST(jit_refuses_before_printing)
{
    outcome *r = run_cli("jit examples/mobilenet_v1.layers --only nosuchname");
    ck_assert_int_eq(r->code, 2);
    ck_assert_str_eq(r->out, "");
    ck_assert_ptr_nonnull(strstr(r->err, "no layer named nosuchname in "
                                         "examples/mobilenet_v1.layers (names: conv1, "));
    ck_assert_ptr_nonnull(strstr(r->err, "sep13")); /* the names it could have been */
    r = run_cli("jit op=dw df=6 m=4 dk=3 --target avx9");
    ck_assert_int_eq(r->code, 2);
    ck_assert_str_eq(r->out, "");
    r = run_cli("jit op=dw name=one df=6 m=4 dk=3 --only pw");
    ck_assert_int_eq(r->code, 2);
    ck_assert_ptr_nonnull(strstr(r->err, "no layer named pw in the spec (names: one; "
                                         "ops: dw)"));
}
END_TEST

START_TEST(gen_best_reads_the_default_backend)
{
    const char *log = "/tmp/sepconv-cli-best.jsonl";
    unlink(log);
    append_record(log, "op=dw df=6 m=8 dk=3", "channel_block=8,tile_w=1,unroll=row");
    /* no --backend: tcc's record, the backend tune and jit default to */
    outcome *r = run_cli("gen op=dw df=6 m=8 dk=3 --schedule best --target portable --log "
                         "/tmp/sepconv-cli-best.jsonl");
    ck_assert_int_eq(r->code, 0);
    ck_assert_str_eq(r->err, "");
    ck_assert_ptr_nonnull(strstr(r->out, "--schedule channel_block=8,tile_w=1,unroll=row "));
    /* jit and run take 'best' too, from the same default backend */
    r = run_cli("jit op=dw df=6 m=8 dk=3 --schedule best --repeat 1 --json --target portable "
                "--log /tmp/sepconv-cli-best.jsonl");
    ck_assert_msg(r->code == 0, "%s", r->err);
    ck_assert_ptr_nonnull(strstr(r->out, "\"schedule\":\"channel_block=8,tile_w=1,"
                                         "unroll=row\""));
    r = run_cli("gen op=dw df=6 m=8 dk=3 --schedule best --backend cc --target portable "
                "--log /tmp/sepconv-cli-best.jsonl");
    ck_assert_int_eq(r->code, 0);
    ck_assert_ptr_nonnull(strstr(r->err, "no cc/portable record"));
    unlink(log);
}
END_TEST

START_TEST(max_source_takes_suffixes)
{
    outcome *r = run_cli("gen op=dw df=6 m=8 dk=3 --max-source 1G");
    ck_assert_msg(r->code == 0, "%s", r->err);
    r = run_cli("gen op=dw df=6 m=8 dk=3 --max-source 64KiB");
    ck_assert_msg(r->code == 0, "%s", r->err);
    const char *bad[] = {"1X", "-5", "99999999999999999999", "20000000000000G", "2T",
                         "1023", "", "1.5M", "M"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char args[256];
        snprintf(args, sizeof args, "gen op=dw df=6 m=8 dk=3 --max-source '%s'", bad[i]);
        r = run_cli(args);
        ck_assert_msg(r->code == 2, "--max-source '%s' exits %d", bad[i], r->code);
        ck_assert_ptr_nonnull(strstr(r->err, "--max-source takes a size"));
    }
    /* a budget too small for the kernel: the message names the flag */
    r = run_cli("gen op=dw df=6 m=8 dk=3 --max-source 1K --schedule unroll=full");
    ck_assert_int_eq(r->code, 1);
    ck_assert_ptr_nonnull(strstr(r->err, "--max-source SIZE"));
    r = run_cli("gen op=sep df=112 m=32 n=64 dk=3 --schedule unroll=full");
    ck_assert_int_eq(r->code, 1);
    ck_assert_ptr_nonnull(strstr(r->err, "raise the budget with --max-source SIZE"));
}
END_TEST

START_TEST(cc_timeout_option)
{
    const char *bad[] = {"0", "-1", "abc", "nan", "inf", "1e9", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char args[256];
        snprintf(args, sizeof args, "jit op=dw df=6 m=8 dk=3 --backend cc --cc-timeout '%s'",
                 bad[i]);
        outcome *r = run_cli(args);
        ck_assert_msg(r->code == 2, "--cc-timeout '%s' exits %d", bad[i], r->code);
        ck_assert_ptr_nonnull(strstr(r->err, "--cc-timeout takes seconds"));
    }
    outcome *r = run_cli("jit op=dw df=6 m=8 dk=3 --backend cc --cc-timeout 300 --repeat 1");
    ck_assert_msg(r->code == 0, "%s", r->err);
    /* the limit reaches the cc backend: a millisecond is too short for cc */
    r = run_cli_with("SEPCONV_CACHE", "off",
                     "jit op=dw df=6 m=8 dk=3 --backend cc --cc-timeout 0.001 --repeat 1");
    ck_assert_int_eq(r->code, 1);
    ck_assert_msg(strstr(r->err, "0.001 s") != NULL, "%s", r->err);
    r = run_cli("run --help");
    ck_assert_ptr_nonnull(strstr(r->out, "--cc-timeout S"));
    ck_assert_ptr_null(strstr(r->out, "{cc_timeout}"));
    char expected[64];
    snprintf(expected, sizeof expected, "(default %g s)",
#ifdef SEPCONV_CC_TIMEOUT_DEFAULT
             (double)(SEPCONV_CC_TIMEOUT_DEFAULT)
#else
             30.0
#endif
    );
    ck_assert_ptr_nonnull(strstr(r->out, expected));
    r = run_cli("jit --help");
    ck_assert_ptr_nonnull(strstr(r->out, expected));
}
END_TEST

Suite *cli_suite(void)
{
    absolute_cli();
    Suite *suite = suite_create("cli");
    TCase *c = tcase_create("cli");
    tcase_set_timeout(c, 60);
    tcase_add_test(c, help_and_version);
    tcase_add_test(c, help_of_a_command_and_version_command);
    tcase_add_test(c, help_names_the_cache_and_every_variable);
    tcase_add_test(c, bad_usage_exits_2);
    tcase_add_test(c, bad_specs_exit_2_with_the_reason);
    tcase_add_test(c, cost_of_one_layer);
    tcase_add_test(c, cost_of_mobilenet);
    tcase_add_test(c, reference_reports_time);
    tcase_add_test(c, gen_reproduces_itself);
    tcase_add_test(c, gen_writes_a_buildable_kernel_and_header);
    tcase_add_test(c, gen_reports_bad_input);
    tcase_add_test(c, schedules_lists_knobs);
    tcase_add_test(c, run_on_npy_files);
    tcase_add_test(c, run_int8_through_the_reference);
    tcase_add_test(c, tune_shards_merge_and_best);
    tcase_add_test(c, failed_writes_to_stdout_exit_1);
    tcase_add_test(c, run_every_backend_and_target);
    tcase_add_test(c, a_target_the_cpu_lacks_is_refused_naming_its_features);
    tcase_add_test(c, run_writes_npy_to_stdout);
    tcase_add_test(c, model_from_stdin);
    tcase_add_test(c, jit_refuses_before_printing);
    tcase_add_test(c, gen_best_reads_the_default_backend);
    tcase_add_test(c, max_source_takes_suffixes);
    tcase_add_test(c, cc_timeout_option);
    suite_add_tcase(suite, c);
    return suite;
}
